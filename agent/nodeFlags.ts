/**
 * The flags Node runs the agent with, wherever it runs: the image's ENTRYPOINT, `npm start`, and the agent
 * that tests, the demo and the bench spawn (scripts/lib/agentProcess.ts). test/agent/nodeFlags.test.ts keeps
 * the Dockerfile and package.json in step with this list.
 *
 * `--max-semi-space-size=2` (MiB): under the agent's steady stream of short-lived per-frame objects V8 grows
 * its young generation to its default maximum, memory that mostly holds garbage. At 2 MiB the
 * agent's PSS is ≈ 25 MiB lower (Node 24, 720p30: one channel 92 → 66 MiB, eight 95 → 69 MiB; Node 20 with one:
 * 88 → 58 MiB) for more frequent scavenges: with one channel the same CPU within the noise (0.039–0.047
 * against 0.039–0.045 CPU-s/s), with eight ≈ 0.02 CPU-s/s more (0.156 → 0.175, 1.5 % of the agent's total).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
