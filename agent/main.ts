import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Agent } from './agent.js';
import { helpText, loadConfig, readChannelsFile, wantsHelp, type AgentConfig } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { HealthServer, type ReadinessReport } from './ops/healthServer.js';
import { EmfPublisher } from './ops/emf.js';
import { AgentMetrics } from './ops/metrics.js';

/**
 * The agent's entry point and the only owner of process signals and of the stop budget. Exit codes: 0 clean
 * stop (SIGTERM/SIGINT, --duration), 1 runtime failure (could not start, a child failed beyond its restart
 * policy, or the stop budget ran out), 2 invalid configuration.
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
    // With several channels (or a channels file) each unit adds its own `channel` to its lines.
    base: { ...(config.channelPerUnit ? {} : { channel: config.channel }), session: config.clientId },
  });
  const { endpoint, region, channels, sink, outputDir, keyframeIntervalMs } = config;
  logger.info(
    { endpoint: endpoint ?? 'aws', region, channels, sink, outputDir, keyframeIntervalMs },
    'starting',
  );

  const metrics = new AgentMetrics();
  const agent = new Agent({ config, logger, credentials: fromNodeProviderChain(), metrics });
  const budgetMs = config.stopBudgetSeconds * 1000;
  // Up before the agent starts: /healthz answers during start-up, /readyz says what is not ready yet.
  let health: HealthServer | undefined;
  if (config.metricsAddress !== 'off') {
    const at = config.metricsAddress.lastIndexOf(':');
    health = new HealthServer({
      host: config.metricsAddress.slice(0, at).replace(/^\[|\]$/g, ''),
      port: Number(config.metricsAddress.slice(at + 1)),
      alive: () => agent.health().alive,
      readiness: () => readiness(agent.health()),
      metrics,
    });
    try {
      const { host, port } = await health.start();
      logger.info({ host, port }, 'health and metrics endpoints listening');
    } catch (err) {
      logger.fatal(
        { err: err, address: config.metricsAddress },
        'could not listen for /healthz and /metrics',
      );
      process.exitCode = 1;
      return;
    }
  }
  // CloudWatch metrics through the log (the alarms of infra/ read them); from start-up on, so "no media yet"
  // reads as 0 frames rather than as missing data.
  const emf =
    config.emfIntervalSeconds > 0
      ? new EmfPublisher({
          metrics,
          channels: () => agent.channels(),
          logger,
          intervalMs: config.emfIntervalSeconds * 1000,
        })
      : undefined;
  emf?.start();
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string, code: number): Promise<void> => {
    shuttingDown ??= (async () => {
      logger.info({ reason, budgetMs }, 'stopping');
      // The last resort, at the end of the budget: report what we have and leave nothing running.
      const hardStop = setTimeout(() => {
        logger.error(
          { budgetMs, units: agent.summaries() },
          'shutdown did not finish within the stop budget: exiting',
        );
        process.exit(1);
      }, budgetMs);
      hardStop.unref();
      try {
        const units = await agent.stop();
        logger.info({ units, bridge: agent.bridgeStats() }, 'recording finished');
      } catch (err) {
        logger.error({ err: err }, 'error while stopping');
        code = code || 1;
      }
      clearTimeout(hardStop);
      // The last document covers the drain, so the final frames and restarts are not lost.
      await emf?.stop();
      await health?.close();
      process.exitCode = code;
    })();
    return shuttingDown;
  };

  // on, not once: a second signal while stopping must not kill the process with the default handler.
  // SIGHUP: the channels file is read again and applied; everything else stays as it was read at start.
  process.on('SIGHUP', () => {
    if (!config.channelsFile) {
      logger.warn('SIGHUP ignored: the channels come from --channel, not from a --channels-file');
      return;
    }
    let channels;
    try {
      channels = readChannelsFile(config.channelsFile);
    } catch (err) {
      logger.error({ err }, 'SIGHUP: the channels file is not valid; the channels stay as they are');
      return;
    }
    agent.reconfigure(channels).then(
      (change) => logger.info({ ...change, channels: agent.channels() }, 'channels reloaded'),
      (err: unknown) => logger.error({ err }, 'SIGHUP: applying the channels failed'),
    );
  });
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  agent.on('fatal', (err) => {
    logger.fatal({ err: err, code: (err as { code?: string }).code }, 'giving up');
    void shutdown('fatal', 1);
  });

  try {
    await agent.start();
  } catch (err) {
    // A signal during start-up is a clean stop, not a failure.
    if (!shuttingDown) {
      logger.fatal({ err: err, code: (err as { code?: string }).code }, 'could not start');
      await shutdown('start failed', 1);
      return;
    }
  }
  if (config.durationSeconds) {
    setTimeout(() => void shutdown('duration reached', 0), config.durationSeconds * 1000).unref();
  }
  // Keeps the event loop alive until a shutdown has finished.
  const keepAlive = setInterval(() => undefined, 60_000);
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (shuttingDown) {
        clearInterval(poll);
        void shuttingDown.then(resolve);
      }
    }, 100);
  });
  clearInterval(keepAlive);
}

/** /readyz: every unit's checks (prefixed by channel when there are several) and the browser's. */
function readiness(h: ReturnType<Agent['health']>): ReadinessReport {
  const checks: ReadinessReport['checks'] = {
    browser: h.browser === 'up' ? { ok: true } : { ok: false, reason: `viewer browser ${h.browser}` },
  };
  for (const unit of h.units) {
    for (const [name, check] of Object.entries(unit.checks)) {
      checks[h.units.length > 1 ? `${unit.channel}:${name}` : name] = check;
    }
  }
  return { checks };
}

main().catch((err: unknown) => {
  process.stderr.write(`webrtc-kvs-agent: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
