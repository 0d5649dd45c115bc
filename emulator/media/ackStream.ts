/** One PutMedia acknowledgement, exactly as KVS writes it on the response body. */
export interface Ack {
  EventType: 'BUFFERING' | 'RECEIVED' | 'PERSISTED' | 'ERROR' | 'IDLE';
  /** The cluster timecode as received (absolute epoch ms with the usual 1 ms TimecodeScale). */
  FragmentTimecode?: number;
  FragmentNumber?: string;
  /** ERROR only. */
  ErrorId?: number;
}

/** One ACK as written on the wire: a flat JSON object; KVS separates them with whitespace. */
export function formatAck(ack: Ack): string {
  return `${JSON.stringify(ack)}\n`;
}

/**
 * Splits an ACK stream into JSON objects whatever the read boundaries (an object may be split across reads,
 * several may arrive in one). Objects are found by brace depth outside strings, as kvssink's parser does.
 */
export class AckStreamParser {
  #text = '';
  #depth = 0;
  #inString = false;
  #escaped = false;
  #start = -1;
  #scanned = 0;
  readonly #decoder = new TextDecoder();

  /** Returns the ACKs completed by this chunk. Throws on JSON that does not parse. */
  push(chunk: Uint8Array | string): Ack[] {
    this.#text += typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const acks: Ack[] = [];
    for (let i = this.#scanned; i < this.#text.length; i++) {
      const c = this.#text[i];
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === '\\') this.#escaped = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"') this.#inString = true;
      else if (c === '{') {
        if (this.#depth === 0) this.#start = i;
        this.#depth++;
      } else if (c === '}' && this.#depth > 0) {
        this.#depth--;
        if (this.#depth === 0) {
          acks.push(JSON.parse(this.#text.slice(this.#start, i + 1)) as Ack);
        }
      }
    }
    if (this.#depth === 0) {
      // Only whitespace (or nothing) is pending.
      this.#text = '';
      this.#scanned = 0;
    } else {
      const start = this.#start;
      this.#text = this.#text.slice(start);
      this.#start = 0;
      this.#scanned = this.#text.length;
    }
    return acks;
  }
}
