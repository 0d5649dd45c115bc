/**
 * Text on the panel goes through this first. Log lines may quote a URL or an SDK error: a presigned signaling
 * URL's query string carries X-Amz-Signature and the credential scope, the control and frame URLs carry the
 * bridge token, and ICE servers carry TURN passwords. None of that belongs on a screen someone may share.
 */
const URL_QUERY = /\b((?:wss?|https?):\/\/[^\s?#"'<>]*)\?[^\s"'<>]*/gi;
const AMZ_PARAM = /X-Amz-[A-Za-z-]+=[^&\s"'<>]*/gi;
const SECRET_FIELD =
  /(["']?\b(?:credential|password|secret\w*|token|signature|session\w*token)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,&;}]+)/gi;

export function redact(text: string): string {
  return text.replace(URL_QUERY, '$1?…').replace(AMZ_PARAM, 'X-Amz-…').replace(SECRET_FIELD, '$1…');
}
