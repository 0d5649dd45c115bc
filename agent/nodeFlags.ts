/**
 * The flags Node runs the agent with, wherever it runs: the image's ENTRYPOINT, `npm start`, and the agent
 * that tests, the demo and the bench spawn (scripts/lib/agentProcess.ts). Test/agent/nodeFlags.test.ts keeps
 * the Dockerfile and package.json in step with this list.
 *
 * `--max-semi-space-size=2` (MiB): V8 grows its young generation to 16 MiB per semi-space (Node 20 and 24)
 * under the agent's steady stream of short-lived frame objects, memory that holds only garbage. At 2 MiB the
 * agent's PSS is ≈ 25 MiB lower with one channel (Node 24: 92 → 66 MiB; Node 20: 88 → 58 MiB) and its CPU the
 * same within the noise (0.039–0.047 against 0.039–0.045 CPU-s/s), measured with a 720p30 call.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
