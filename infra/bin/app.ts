import { createApp } from '../lib/app.js';

// Entry point of the CDK CLI (infra/cdk.json); the CLI synthesizes the app when this module has run.
createApp();
