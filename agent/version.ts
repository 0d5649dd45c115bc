/** The agent's version, sent to KVS in kvssink's user agent. A test keeps it equal to package.json's. */
export const AGENT_VERSION = '0.1.0';
export const USER_AGENT = `webrtc-kvs-agent/${AGENT_VERSION}`;
