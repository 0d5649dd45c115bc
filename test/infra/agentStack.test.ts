import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import cdkNag from 'cdk-nag';
import { HealthServer } from '../../agent/ops/healthServer.js';
import { AgentMetrics } from '../../agent/ops/metrics.js';
import { createApp } from '../../infra/lib/app.js';
import type { AgentStack } from '../../infra/lib/agentStack.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

/** One synthesis per configuration, shared by the tests that read it (synthesis takes seconds). */
const synths = new Map<string, { stack: AgentStack; template: Template }>();
function synth(context: Record<string, unknown>): { stack: AgentStack; template: Template } {
  const key = JSON.stringify(context);
  let s = synths.get(key);
  if (!s) {
    const { stack } = createApp({ context });
    s = { stack, template: Template.fromStack(stack) };
    synths.set(key, s);
  }
  return s;
}

/** Most tests use an image already in ECR, so no Docker asset is staged. */
const ECR = { imageSource: 'ecr' };
const EXISTING = { imageSource: 'ecr', createChannel: false, createStream: false };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A CloudFormation value with the pseudo parameters filled in, as CloudFormation would at deploy time. */
function resolveCfn(value: Json, pseudo = { partition: 'aws', account: '123456789012' }): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if (value.Ref === 'AWS::Partition') return pseudo.partition;
    if (value.Ref === 'AWS::AccountId') return pseudo.account;
    const join = value['Fn::Join'];
    if (Array.isArray(join)) {
      const [sep, parts] = join as [string, Json[]];
      return parts.map((p) => resolveCfn(p, pseudo)).join(sep);
    }
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}

function resources(
  template: Template,
  type: string,
): Array<{ id: string; Properties: Record<string, Json> }> {
  return Object.entries(template.findResources(type)).map(([id, r]) => ({
    id,
    Properties: (r as { Properties: Record<string, Json> }).Properties,
  }));
}

function container(template: Template): Record<string, Json> {
  const [td] = resources(template, 'AWS::ECS::TaskDefinition');
  return (td!.Properties.ContainerDefinitions as Array<Record<string, Json>>)[0]!;
}

test.describe('default stack (image from ECR)', () => {
  test('every resource the stack needs is there, and nothing it should not have', () => {
    const { template } = synth(ECR);
    for (const [type, n] of [
      ['AWS::KinesisVideo::SignalingChannel', 1],
      ['AWS::KinesisVideo::Stream', 1],
      ['AWS::ECR::Repository', 1],
      ['AWS::EC2::VPC', 1],
      ['AWS::EC2::Subnet', 2],
      ['AWS::EC2::InternetGateway', 1],
      ['AWS::EC2::SecurityGroup', 1],
      ['AWS::ECS::Cluster', 1],
      ['AWS::ECS::TaskDefinition', 1],
      ['AWS::ECS::Service', 1],
      ['AWS::IAM::Role', 2],
      ['AWS::Logs::LogGroup', 1],
      ['AWS::CloudWatch::Alarm', 3],
      // No NAT gateway (nor its Elastic IP), no ingress rule, no SNS without an e-mail address.
      ['AWS::EC2::NatGateway', 0],
      ['AWS::EC2::EIP', 0],
      ['AWS::EC2::SecurityGroupIngress', 0],
      ['AWS::SNS::Topic', 0],
      // Native resources only: no Lambda-backed custom resource anywhere.
      ['AWS::Lambda::Function', 0],
      ['AWS::CloudFormation::CustomResource', 0],
    ] as const) {
      template.resourceCountIs(type, n);
    }
    const custom = Object.values(template.toJSON().Resources as Record<string, { Type: string }>).filter(
      (r) => r.Type.startsWith('Custom::'),
    );
    expect(custom).toEqual([]);
  });

  test('the channel and the stream are native CloudFormation resources with the user’s names and 24 h retention', () => {
    const { template } = synth(ECR);
    template.hasResourceProperties('AWS::KinesisVideo::SignalingChannel', {
      Name: 'webrtc-kvs-agent-channel',
      Type: 'SINGLE_MASTER',
    });
    template.hasResourceProperties('AWS::KinesisVideo::Stream', {
      Name: 'webrtc-kvs-agent-stream',
      DataRetentionInHours: 24,
      MediaType: 'video/h264,audio/aac',
    });
  });

  test('public subnets in 2 AZs only; the security group has no inbound rule', () => {
    const { template } = synth(ECR);
    const subnets = resources(template, 'AWS::EC2::Subnet');
    expect(subnets.map((s) => s.Properties.MapPublicIpOnLaunch)).toEqual([true, true]);
    const azs = subnets.map((s) => JSON.stringify(s.Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
    // Every subnet routes to the internet gateway: none is private.
    const routes = resources(template, 'AWS::EC2::Route');
    expect(routes).toHaveLength(2);
    for (const r of routes) {
      expect(r.Properties.DestinationCidrBlock).toBe('0.0.0.0/0');
      expect(r.Properties.GatewayId).toEqual({ Ref: expect.stringMatching(/^VpcIGW/) });
    }
    const [sg] = resources(template, 'AWS::EC2::SecurityGroup');
    expect(sg!.Properties.SecurityGroupIngress).toBeUndefined();
    expect(sg!.Properties.SecurityGroupEgress).toEqual([
      { CidrIp: '0.0.0.0/0', Description: 'Allow all outbound traffic by default', IpProtocol: '-1' },
    ]);
  });

  test('the task role holds exactly the KVS actions on the exact channel and stream ARNs', () => {
    const { template } = synth(ECR);
    const [taskRole] = resources(template, 'AWS::IAM::Role').filter(
      (r) => typeof r.Properties.Description === 'string' && r.Properties.Description.includes('task:'),
    );
    expect(taskRole!.Properties.ManagedPolicyArns).toBeUndefined();
    expect(taskRole!.Properties.Policies).toBeUndefined();
    const attached = resources(template, 'AWS::IAM::Policy').filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(taskRole!.id),
    );
    expect(attached).toHaveLength(1);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: taskRole!.id }],
      PolicyDocument: Match.exact({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'ViewSignalingChannel',
            Effect: 'Allow',
            Action: [
              'kinesisvideo:DescribeSignalingChannel',
              'kinesisvideo:DescribeMediaStorageConfiguration',
              'kinesisvideo:GetSignalingChannelEndpoint',
              'kinesisvideo:GetIceServerConfig',
              'kinesisvideo:ConnectAsViewer',
            ],
            Resource: { 'Fn::GetAtt': ['Channel', 'Arn'] },
          },
          {
            Sid: 'WriteStream',
            Effect: 'Allow',
            Action: ['kinesisvideo:DescribeStream', 'kinesisvideo:GetDataEndpoint', 'kinesisvideo:PutMedia'],
            Resource: { 'Fn::GetAtt': ['Stream', 'Arn'] },
          },
        ],
      }),
    });
    // Only ECS tasks of this account may assume it.
    expect(taskRole!.Properties.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: 'ecs-tasks.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
  });

  test('the granted actions are the SDK calls the agent makes, plus what kvssink and the presigner need', () => {
    const { template } = synth(ECR);
    const sources = readdirSync(join(ROOT, 'agent'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(ROOT, 'agent', f), 'utf8'));
    const called = new Set<string>();
    for (const src of sources) {
      for (const m of src.matchAll(/new (\w+)Command\(/g)) called.add(`kinesisvideo:${m[1]}`);
    }
    // The agent can create a missing stream, but on AWS it runs with CREATE_STREAM=false (stack-made or existing).
    expect(called).toContain('kinesisvideo:CreateStream');
    called.delete('kinesisvideo:CreateStream');
    // Presigned signaling URL (agent/aws/presigner.ts) and kvssink's own calls (docs: kvs-wire-reference §4).
    for (const a of ['ConnectAsViewer', 'DescribeStream', 'GetDataEndpoint', 'PutMedia'])
      called.add(`kinesisvideo:${a}`);
    const granted = resources(template, 'AWS::IAM::Policy')
      .filter((p) => p.id.startsWith('KvsAccess'))
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Array<{ Action: string[] }> }).Statement)
      .flatMap((s) => s.Action);
    expect([...granted].sort()).toEqual([...called].sort());
    const env = container(template).Environment as Array<{ Name: string; Value: string }>;
    expect(env).toContainEqual({ Name: 'CREATE_STREAM', Value: 'false' });
  });

  test('no policy in the stack has a * action, and * resource only where IAM has no resource level (ecr:GetAuthorizationToken)', () => {
    const { template } = synth(ECR);
    const statements = resources(template, 'AWS::IAM::Policy').flatMap(
      (p) =>
        (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: Json }> })
          .Statement,
    );
    expect(statements.length).toBeGreaterThan(3);
    for (const s of statements) {
      for (const a of [s.Action].flat()) expect(a).not.toContain('*');
      if (JSON.stringify(s.Resource).includes('*'))
        expect(s).toEqual({ Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' });
    }
  });

  test('ARM64 Fargate task, 1 vCPU / 2 GiB, environment wired, stop timeout and health check set', () => {
    const { template } = synth(ECR);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '1024',
      Memory: '2048',
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    const c = container(template);
    expect(
      Object.fromEntries(
        (c.Environment as Array<{ Name: string; Value: string }>).map((e) => [e.Name, e.Value]),
      ),
    ).toEqual({
      CHANNEL_NAME: 'webrtc-kvs-agent-channel',
      STREAM_NAME: 'webrtc-kvs-agent-stream',
      AWS_REGION: 'ap-northeast-1',
      SINK: 'kvssink',
      CREATE_STREAM: 'false',
      STOP_BUDGET_SECONDS: '25',
      METRICS_ADDRESS: '127.0.0.1:9090',
      EMF_INTERVAL_SECONDS: '60',
      LOG_LEVEL: 'info',
    });
    // Fargate sends SIGKILL stopTimeout after SIGTERM: 5 s more than the agent's drain budget.
    expect(c.StopTimeout).toBe(30);
    expect(c.Essential).toBe(true);
    expect(c.HealthCheck).toMatchObject({ Interval: 30, Timeout: 5, Retries: 3, StartPeriod: 60 });
    const command = (c.HealthCheck as { Command: string[] }).Command;
    expect(command[0]).toBe('CMD-SHELL');
    expect(command[1]).toContain('http://127.0.0.1:9090/healthz');
    expect(c.LogConfiguration).toMatchObject({
      LogDriver: 'awslogs',
      Options: { 'awslogs-stream-prefix': 'agent', 'awslogs-region': 'ap-northeast-1', mode: 'non-blocking' },
    });
    expect(c.Image).toMatchObject({ 'Fn::Join': ['', expect.arrayContaining([':latest'])] });
  });

  test('the health check command really probes /healthz: exit 0 on 200, 1 on 503 or when nothing listens', async () => {
    const { template } = synth(ECR);
    const shell = (container(template).HealthCheck as { Command: string[] }).Command[1]!;
    let alive = true;
    const server = new HealthServer({
      port: 0,
      alive: () => alive,
      readiness: () => ({ checks: {} }),
      metrics: new AgentMetrics({ defaultMetrics: false }),
    });
    const { port } = await server.start();
    // The same command, pointed at this test's port instead of the container's 9090.
    const probe = (p: number) =>
      run('sh', ['-c', shell.replace('127.0.0.1:9090', `127.0.0.1:${p}`)], { timeout: 15_000 }).then(
        () => 0,
        (err: { code?: number }) => err.code,
      );
    try {
      expect(await probe(port)).toBe(0);
      alive = false;
      expect(await probe(port)).toBe(1);
    } finally {
      await server.close();
    }
    expect(await probe(port)).toBe(1);
  });

  test('service: public IP, one task at a time (min 0 % / max 100 %), circuit breaker with rollback', () => {
    const { template } = synth(ECR);
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 1,
      DeploymentConfiguration: Match.objectLike({
        MinimumHealthyPercent: 0,
        MaximumPercent: 100,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'ENABLED' }) },
    });
  });

  test('log group keeps 30 days; ECR repository scans on push and keeps 10 images', () => {
    const { template } = synth(ECR);
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    template.hasResourceProperties('AWS::ECR::Repository', {
      RepositoryName: 'webrtc-kvs-agent',
      ImageScanningConfiguration: { ScanOnPush: true },
      EmptyOnDelete: true,
      LifecyclePolicy: { LifecyclePolicyText: Match.stringLikeRegexp('"countNumber":10') },
    });
  });

  test('alarms read the metrics the agent writes as EMF: namespace, names and the channel dimension', () => {
    const { template } = synth(ECR);
    const alarms = resources(template, 'AWS::CloudWatch::Alarm').map((a) => a.Properties);
    const common = {
      Namespace: 'webrtc-kvs-agent',
      Dimensions: [{ Name: 'channel', Value: 'webrtc-kvs-agent-channel' }],
      Statistic: 'Sum',
    };
    expect(alarms).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          ...common,
          MetricName: 'VideoFrames',
          Period: 60,
          EvaluationPeriods: 5,
          DatapointsToAlarm: 5,
          Threshold: 1,
          ComparisonOperator: 'LessThanThreshold',
          // No datapoint at all means no agent: that is "no media" too.
          TreatMissingData: 'breaching',
        }),
        expect.objectContaining({
          ...common,
          MetricName: 'ChildRestarts',
          Period: 900,
          Threshold: 3,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
        }),
        expect.objectContaining({
          ...common,
          MetricName: 'CredentialRefreshFailures',
          Period: 300,
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
        }),
      ]),
    );
    for (const a of alarms) {
      expect(a.AlarmActions).toBeUndefined();
      // An alarm filtered by unit sees nothing when the unit differs from the datapoints'.
      expect(a.Unit).toBeUndefined();
    }
  });

  test('cdk-nag AwsSolutions: no finding left without a recorded reason', () => {
    const { stack } = synth(ECR);
    expect(new cdkNag.AwsSolutionsChecks().validateScope(stack)).toEqual({ success: true, violations: [] });
  });
});

test.describe('existing channel and stream', () => {
  test('no KVS resource is created; ARNs are built from the names, * only for the creation-time suffix', () => {
    const { template } = synth(EXISTING);
    template.resourceCountIs('AWS::KinesisVideo::SignalingChannel', 0);
    template.resourceCountIs('AWS::KinesisVideo::Stream', 0);
    const [policy] = resources(template, 'AWS::IAM::Policy').filter((p) => p.id.startsWith('KvsAccess'));
    const arns = (
      policy!.Properties.PolicyDocument as { Statement: Array<{ Resource: Json }> }
    ).Statement.map((s) => resolveCfn(s.Resource));
    expect(arns).toEqual([
      'arn:aws:kinesisvideo:ap-northeast-1:123456789012:channel/webrtc-kvs-agent-channel/*',
      'arn:aws:kinesisvideo:ap-northeast-1:123456789012:stream/webrtc-kvs-agent-stream/*',
    ]);
    // The shape of a real KVS ARN (…:stream/<name>/<creation time in ms>) matches exactly these patterns.
    const pattern = (arn: string) =>
      new RegExp(`^${arn.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&').replace('\\*', '[^/]+')}$`);
    expect(
      'arn:aws:kinesisvideo:ap-northeast-1:123456789012:stream/webrtc-kvs-agent-stream/1712345678901',
    ).toMatch(pattern(arns[1]!));
    expect(
      'arn:aws:kinesisvideo:ap-northeast-1:123456789012:stream/webrtc-kvs-agent-stream-2/1712345678901',
    ).not.toMatch(pattern(arns[1]!));
    expect('arn:aws:kinesisvideo:ap-northeast-1:123456789012:channel/other/1712345678901').not.toMatch(
      pattern(arns[0]!),
    );
  });

  test('cdk-nag accepts exactly those two wildcards, with their reason', () => {
    const { stack } = synth(EXISTING);
    expect(new cdkNag.AwsSolutionsChecks().validateScope(stack)).toEqual({ success: true, violations: [] });
  });
});

test.describe('x86_64, existing ECR repository, alarm e-mail, first-deploy desired count', () => {
  const CONTEXT = {
    imageSource: 'ecr',
    createEcrRepository: 'false',
    ecrRepositoryName: 'team/recorder',
    imageTag: 'v1.2.3',
    architecture: 'x86_64',
    desiredCount: '0',
    alarmEmail: 'ops@example.com',
    channelName: 'cam-7',
    streamName: 'cam-7-stream',
    cpu: '512',
    memoryMiB: '2048',
    logRetentionDays: '7',
    stopBudgetSeconds: '40',
    region: 'eu-west-1',
  };

  test('context strings reach the template: architecture, size, names, tag, desired count, region', () => {
    const { template, stack } = synth(CONTEXT);
    expect(stack.region).toBe('eu-west-1');
    template.resourceCountIs('AWS::ECR::Repository', 0);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '512',
      Memory: '2048',
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    });
    template.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 0 });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
    const c = container(template);
    expect(c.StopTimeout).toBe(45);
    expect(JSON.stringify(c.Image)).toContain('/team/recorder:v1.2.3');
    expect(c.Environment).toEqual(
      expect.arrayContaining([
        { Name: 'CHANNEL_NAME', Value: 'cam-7' },
        { Name: 'STREAM_NAME', Value: 'cam-7-stream' },
        { Name: 'AWS_REGION', Value: 'eu-west-1' },
        { Name: 'STOP_BUDGET_SECONDS', Value: '40' },
      ]),
    );
    template.hasResourceProperties('AWS::KinesisVideo::SignalingChannel', { Name: 'cam-7' });
    for (const a of resources(template, 'AWS::CloudWatch::Alarm')) {
      expect(a.Properties.Dimensions).toEqual([{ Name: 'channel', Value: 'cam-7' }]);
    }
    // The execution role may pull from that repository only.
    const pull = resources(template, 'AWS::IAM::Policy')
      .flatMap(
        (p) =>
          (p.Properties.PolicyDocument as { Statement: Array<{ Action: Json; Resource: Json }> }).Statement,
      )
      .find((s) => JSON.stringify(s.Action).includes('ecr:BatchGetImage'));
    expect(resolveCfn(pull!.Resource)).toBe('arn:aws:ecr:eu-west-1:123456789012:repository/team/recorder');
  });

  test('an SNS topic (TLS only) with the e-mail subscription receives alarm and OK actions', () => {
    const { template } = synth(CONTEXT);
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    const [topic] = resources(template, 'AWS::SNS::Topic');
    for (const a of resources(template, 'AWS::CloudWatch::Alarm')) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: topic!.id }]);
      expect(a.Properties.OKActions).toEqual([{ Ref: topic!.id }]);
    }
    const { stack } = synth(CONTEXT);
    expect(new cdkNag.AwsSolutionsChecks().validateScope(stack)).toEqual({ success: true, violations: [] });
  });
});

test('the Dockerfile as an asset: built for linux/arm64, the build context leaves node_modules, dist and .git out', () => {
  test.setTimeout(180_000);
  const { app, stack } = createApp({ context: {} });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, { Type: string; Properties: Record<string, Json> }>;
  };
  const td = Object.values(template.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')!;
  const image = JSON.stringify((td.Properties.ContainerDefinitions as Array<{ Image: Json }>)[0]!.Image);
  expect(image).toContain('cdk-hnb659fds-container-assets');
  expect(Object.values(template.Resources).filter((r) => r.Type === 'AWS::ECR::Repository')).toEqual([]);
  const manifest = JSON.parse(
    readFileSync(join(assembly.directory, `${stack.stackName}.assets.json`), 'utf8'),
  ) as {
    dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }>;
  };
  const images = Object.values(manifest.dockerImages);
  expect(images).toHaveLength(1);
  expect(images[0]!.source).toMatchObject({ dockerFile: 'Dockerfile', platform: 'linux/arm64' });
  const staged = join(assembly.directory, images[0]!.source.directory);
  expect(existsSync(join(staged, 'Dockerfile'))).toBe(true);
  expect(existsSync(join(staged, 'package.json'))).toBe(true);
  expect(existsSync(join(staged, 'agent', 'main.ts'))).toBe(true);
  for (const excluded of ['node_modules', 'dist', '.git', 'test-results', 'recordings']) {
    expect(existsSync(join(staged, excluded)), excluded).toBe(false);
  }
});
