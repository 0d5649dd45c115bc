import { App, Validations, type AppProps } from 'aws-cdk-lib';
// cdk-nag is CommonJS without static export names: Node's ESM loader sees only its default export.
import cdkNag from 'cdk-nag';
import { AgentStack } from './agentStack.js';
import { configFromContext } from './config.js';

/**
 * The CDK app: one stack, configured from context (infra/cdk.json, `-c key=value`, `-c configFile=…`). The
 * account is the CLI's when it knows one (CDK_DEFAULT_ACCOUNT) or left to deploy time, so synthesis needs no
 * credentials; the region is always the configured one. cdk-nag's AwsSolutions rules run on every synthesis:
 * a finding without a recorded reason fails `synth` and `deploy`.
 */
export function createApp(props: AppProps = {}): { app: App; stack: AgentStack } {
  const app = new App(props);
  const config = configFromContext((key) => app.node.tryGetContext(key) as unknown);
  const stack = new AgentStack(app, config.stackName, {
    config,
    env: { region: config.region, account: config.account ?? process.env.CDK_DEFAULT_ACCOUNT },
    description: `webrtc-kvs-agent: records KVS signaling channel ${config.channelName} into stream ${config.streamName}`,
    tags: { project: 'webrtc-kvs-agent' },
  });
  Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}
