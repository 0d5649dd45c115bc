import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ArnFormat,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Size,
  Stack,
  type StackProps,
  Token,
  Validations,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_ec2 as ec2,
  aws_ecr as ecr,
  aws_ecr_assets as ecrAssets,
  aws_ecs as ecs,
  aws_iam as iam,
  aws_kinesisvideo as kvs,
  aws_logs as logs,
  aws_sns as sns,
  aws_sns_subscriptions as subscriptions,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { EMF_DIMENSION, EMF_NAMESPACE, type EmfMetricName } from '../../agent/ops/emf.js';
import { STREAM_MEDIA_TYPE } from '../../agent/aws/streamProvisioner.js';
import type { AgentStackConfig } from './config.js';

/** The repository root: the Dockerfile's build context for the asset image source. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the agent serves /healthz (loopback only: the health check runs inside the container). */
const METRICS_ADDRESS = '127.0.0.1:9090';

export interface AgentStackProps extends StackProps {
  config: AgentStackConfig;
}

/**
 * Everything one recording agent needs on AWS: a VPC with public subnets only (no NAT gateway), one Fargate
 * task as VIEWER of one signaling channel writing into one Kinesis video stream, least-privilege roles, its log
 * group and alarms on the metrics the agent writes into that log (EMF, agent/ops/emf.ts).
 */
export class AgentStack extends Stack {
  readonly service: ecs.FargateService;
  readonly channelArn: string;
  readonly streamArn: string;

  constructor(scope: Construct, id: string, props: AgentStackProps) {
    super(scope, id, props);
    const c = props.config;
    const retain = c.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // --- KVS: native CloudFormation resources, or existing ones by name -----------------------------------
    if (c.createChannel) {
      const channel = new kvs.CfnSignalingChannel(this, 'Channel', {
        name: c.channelName,
        type: 'SINGLE_MASTER',
        messageTtlSeconds: 60,
      });
      this.channelArn = channel.attrArn;
    } else {
      this.channelArn = this.#existingKvsArn('channel', c.channelName);
    }
    if (c.createStream) {
      const stream = new kvs.CfnStream(this, 'Stream', {
        name: c.streamName,
        dataRetentionInHours: c.retentionHours,
        mediaType: STREAM_MEDIA_TYPE,
      });
      stream.applyRemovalPolicy(retain);
      this.streamArn = stream.attrArn;
    } else {
      this.streamArn = this.#existingKvsArn('stream', c.streamName);
    }

    // --- Network: public subnets in 2 AZs, no NAT gateway; the task has a public IP and no inbound rule ---
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.42.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      // Restricting the default group needs a Lambda-backed custom resource; nothing uses that group.
      restrictDefaultSecurityGroup: false,
    });
    const securityGroup = new ec2.SecurityGroup(this, 'AgentSecurityGroup', {
      vpc,
      description: 'webrtc-kvs-agent: no inbound; outbound to KVS, TURN and the WebRTC peer',
      // WebRTC media goes to the master's (or TURN's) ICE candidates on arbitrary UDP ports.
      allowAllOutbound: true,
    });

    // --- Image --------------------------------------------------------------------------------------------
    const platform =
      c.architecture === 'arm64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64;
    let image: ecs.ContainerImage;
    let repository: ecr.IRepository | undefined;
    if (c.imageSource === 'asset') {
      image = ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: 'Dockerfile',
        platform,
        ...(c.dockerTarget ? { target: c.dockerTarget } : {}),
      });
    } else {
      repository = c.createEcrRepository
        ? new ecr.Repository(this, 'Repository', {
            repositoryName: c.ecrRepositoryName,
            imageScanOnPush: true,
            lifecycleRules: [{ description: 'keep the last 10 images', maxImageCount: 10 }],
            removalPolicy: retain,
            // Native CloudFormation EmptyOnDelete (no custom resource): destroy removes the images too.
            emptyOnDelete: !c.retainData,
          })
        : ecr.Repository.fromRepositoryName(this, 'Repository', c.ecrRepositoryName);
      image = ecs.ContainerImage.fromEcrRepository(repository, c.imageTag);
    }

    // --- Roles --------------------------------------------------------------------------------------------
    const taskRole = new iam.Role(this, 'TaskRole', {
      description: 'webrtc-kvs-agent task: view one signaling channel, write one Kinesis video stream',
      // Only ECS tasks of this account may assume it (confused-deputy guard, as the ECS docs recommend).
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) },
          StringEquals: { 'aws:SourceAccount': this.account },
        },
      }),
    });
    const kvsAccess = new iam.Policy(this, 'KvsAccess', {
      roles: [taskRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'ViewSignalingChannel',
          actions: [
            // agent/aws/discovery.ts: the channel's ARN and state, by name.
            'kinesisvideo:DescribeSignalingChannel',
            // agent/aws/discovery.ts: refuse a channel with WebRTC ingestion (media storage) enabled.
            'kinesisvideo:DescribeMediaStorageConfiguration',
            // agent/aws/discovery.ts: the VIEWER role's WSS and HTTPS endpoints.
            'kinesisvideo:GetSignalingChannelEndpoint',
            // agent/aws/discovery.ts: TURN servers (kinesis-video-signaling, on the HTTPS endpoint).
            'kinesisvideo:GetIceServerConfig',
            // agent/aws/presigner.ts: the presigned signaling WebSocket the page opens as VIEWER.
            'kinesisvideo:ConnectAsViewer',
          ],
          resources: [this.channelArn],
        }),
        new iam.PolicyStatement({
          sid: 'WriteStream',
          actions: [
            // agent/aws/streamProvisioner.ts before every run, and kvssink before it streams.
            'kinesisvideo:DescribeStream',
            // kvssink: the PUT_MEDIA data endpoint.
            'kinesisvideo:GetDataEndpoint',
            // kvssink: the media itself.
            'kinesisvideo:PutMedia',
            // Not CreateStream (the stack creates the stream, or it exists: CREATE_STREAM=false) and not
            // TagStream (kvssink tags only with stream-tags, which the agent does not set).
          ],
          resources: [this.streamArn],
        }),
      ],
    });

    const executionRole = new iam.Role(this, 'ExecutionRole', {
      description: 'webrtc-kvs-agent: ECS pulls the image and writes the log (grants added by CDK)',
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    });

    // --- Logs ---------------------------------------------------------------------------------------------
    const logGroup = new logs.LogGroup(this, 'AgentLogs', {
      retention: c.logRetentionDays as logs.RetentionDays,
      removalPolicy: retain,
    });

    // --- Task and service ---------------------------------------------------------------------------------
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: c.cpu,
      memoryLimitMiB: c.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: c.architecture === 'arm64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole,
      executionRole,
    });
    const healthUrl = `http://${METRICS_ADDRESS}/healthz`;
    taskDefinition.addContainer('agent', {
      image,
      essential: true,
      environment: {
        CHANNEL_NAME: c.channelName,
        STREAM_NAME: c.streamName,
        AWS_REGION: this.region,
        SINK: 'kvssink',
        // The stream is the stack's or exists already: the agent must not create one (and has no permission to).
        CREATE_STREAM: 'false',
        STOP_BUDGET_SECONDS: String(c.stopBudgetSeconds),
        METRICS_ADDRESS,
        EMF_INTERVAL_SECONDS: String(c.emfIntervalSeconds),
        LOG_LEVEL: c.logLevel,
      },
      // SIGTERM → the agent drains within its stop budget (last fragment PERSISTED); SIGKILL only after this.
      stopTimeout: Duration.seconds(c.stopBudgetSeconds + 5),
      healthCheck: {
        // The image has node but not necessarily curl; a 4 s fetch timeout stays inside the check's 5 s.
        command: [
          'CMD-SHELL',
          `node -e "fetch('${healthUrl}',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"`,
        ],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        // Chromium's first launch and the channel's discovery come before /healthz turns 200.
        startPeriod: Duration.seconds(60),
      },
      logging: ecs.LogDrivers.awsLogs({
        logGroup,
        streamPrefix: 'agent',
        // Never block the agent's stdout on CloudWatch Logs (media would stall); the buffer rides out hiccups.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(25),
      }),
    });

    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.DISABLED,
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition,
      desiredCount: c.desiredCount,
      assignPublicIp: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [securityGroup],
      // Stop the old task before starting the new one: two agents must never record one channel at once.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });

    // --- Alarms on the agent's own EMF metrics --------------------------------------------------------------
    const metric = (name: EmfMetricName, period: Duration) =>
      new cloudwatch.Metric({
        namespace: EMF_NAMESPACE,
        metricName: name,
        dimensionsMap: { [EMF_DIMENSION]: c.channelName },
        statistic: cloudwatch.Stats.SUM,
        period,
        // No unit filter: an alarm whose unit differed from the datapoints' would see no data at all.
      });
    const alarms = [
      new cloudwatch.Alarm(this, 'NoMediaAlarm', {
        alarmDescription: `No video frame recorded from ${c.channelName} for ${c.noMediaMinutes} min (missing data = the agent is not running)`,
        metric: metric('VideoFrames', Duration.minutes(1)),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: c.noMediaMinutes,
        datapointsToAlarm: c.noMediaMinutes,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      }),
      new cloudwatch.Alarm(this, 'RestartsAlarm', {
        alarmDescription: `More than ${c.restartThreshold} restarts of Chromium, the page or GStreamer within ${c.restartWindowMinutes} min`,
        metric: metric('ChildRestarts', Duration.minutes(c.restartWindowMinutes)),
        threshold: c.restartThreshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'CredentialRefreshAlarm', {
        alarmDescription:
          "kvssink's credentials could not be refreshed (the recording stops when the current ones expire)",
        metric: metric('CredentialRefreshFailures', Duration.minutes(5)),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    if (c.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', {
        displayName: 'webrtc-kvs-agent alarms',
        enforceSSL: true,
      });
      topic.addSubscription(new subscriptions.EmailSubscription(c.alarmEmail));
      for (const alarm of alarms) {
        alarm.addAlarmAction(new cwActions.SnsAction(topic));
        alarm.addOkAction(new cwActions.SnsAction(topic));
      }
    }

    // --- Outputs ------------------------------------------------------------------------------------------
    new CfnOutput(this, 'ChannelArn', { value: this.channelArn });
    new CfnOutput(this, 'StreamArn', { value: this.streamArn });
    new CfnOutput(this, 'ClusterName', { value: cluster.clusterName });
    new CfnOutput(this, 'ServiceName', { value: this.service.serviceName });
    new CfnOutput(this, 'LogGroupName', { value: logGroup.logGroupName });
    if (repository) new CfnOutput(this, 'RepositoryUri', { value: repository.repositoryUri });

    this.#acknowledgeNagFindings(vpc, taskDefinition, executionRole, kvsAccess, c);
  }

  /**
   * An existing channel's or stream's ARN from its name. KVS ARNs end in a creation-time suffix
   * (`…:stream/<name>/1712345678901`) that a name does not tell, so only that last segment is `*`.
   */
  #existingKvsArn(resource: 'channel' | 'stream', name: string): string {
    return this.formatArn({
      service: 'kinesisvideo',
      resource,
      resourceName: `${name}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** cdk-nag (AwsSolutions) findings accepted on purpose, each with its reason. */
  #acknowledgeNagFindings(
    vpc: ec2.Vpc,
    taskDefinition: ecs.FargateTaskDefinition,
    executionRole: iam.Role,
    kvsAccess: iam.Policy,
    c: AgentStackConfig,
  ): void {
    Validations.of(vpc).acknowledge({
      id: 'AwsSolutions-VPC7',
      reason: 'No inbound traffic and one task; flow logs would cost more than they tell here.',
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds names and settings only; credentials come from the task role.',
    });
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason:
        'Container Insights is billed per metric; the agent publishes what the alarms need itself (EMF).',
    });
    Validations.of(executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken has no resource-level permissions (added by CDK for the image pull).',
    });
    // cdk-nag names a finding by the ARN as rendered, tokens as <AWS::Partition> etc.
    const account = Token.isUnresolved(this.account) ? '<AWS::AccountId>' : this.account;
    for (const [create, resource, name] of [
      [c.createChannel, 'channel', c.channelName],
      [c.createStream, 'stream', c.streamName],
    ] as const) {
      if (create) continue;
      Validations.of(kvsAccess).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kinesisvideo:${this.region}:${account}:${resource}/${name}/*]`,
        reason: `The existing ${resource} is known by name only; its ARN ends in a creation-time suffix, the only part left as *.`,
      });
    }
  }
}
