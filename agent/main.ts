import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Agent } from './agent.js';
import { helpText, loadConfig, wantsHelp, type AgentConfig } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './log.js';

/**
 * The agent's entry point and the only owner of process signals. Exit codes: 0 clean stop, 1 runtime
 * failure, 2 invalid configuration.
 */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    process.stdout.write(helpText());
    return;
  }
  let config: AgentConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`webrtc-kvs-agent: invalid configuration: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }

  const logger = createLogger({
    level: config.logLevel,
    base: { channel: config.channel, session: config.clientId },
  });
  const { endpoint, region, stream, sink, outputDir, keyframeIntervalMs } = config;
  logger.info(
    { endpoint: endpoint ?? 'aws', region, stream, sink, outputDir, keyframeIntervalMs },
    'starting',
  );

  const agent = new Agent({ config, logger, credentials: fromNodeProviderChain() });
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string, code: number): Promise<void> => {
    shuttingDown ??= (async () => {
      logger.info({ reason }, 'stopping');
      const hardStop = setTimeout(() => {
        logger.error('shutdown took longer than 60 s, exiting');
        process.exit(1);
      }, 60_000);
      hardStop.unref();
      try {
        const summaries = await agent.stop();
        logger.info({ summaries, bridge: agent.bridgeStats() }, 'recording finished');
      } catch (err) {
        logger.error({ err: errorMessage(err) }, 'error while stopping');
        code = code || 1;
      }
      process.exitCode = code;
    })();
    return shuttingDown;
  };

  // on, not once: a second signal while stopping must not kill the process with the default handler.
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  agent.onFatal((err) => {
    logger.fatal({ err: errorMessage(err) }, 'giving up');
    void shutdown('fatal', 1);
  });

  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err: errorMessage(err), code: (err as { code?: string }).code }, 'could not start');
    await shutdown('start failed', 1);
    return;
  }
  if (config.durationSeconds) {
    setTimeout(() => void shutdown('duration reached', 0), config.durationSeconds * 1000).unref();
  }
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (shuttingDown) {
        clearInterval(poll);
        void shuttingDown.then(resolve);
      }
    }, 200);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`webrtc-kvs-agent: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
