// Runs the real AWS CLI against a keymesh server, isolated from any AWS configuration on the machine.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { AppMeshClient } from '@aws-sdk/client-app-mesh';
import { TEST_CREDENTIALS } from './keymesh-server.ts';

/** Debian's awscli (v2) when installed; otherwise whatever `aws` is on PATH. */
export const AWS_CLI = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is JSON. */
  json: any;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export function awsEnv(creds: Credentials = TEST_CREDENTIALS, region = 'us-east-1'): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_DEFAULT_REGION: region,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_MAX_ATTEMPTS: '1',
  };
}

/** `aws appmesh <args> --endpoint-url <url> --output json`. */
export function appmeshCli(url: string, args: string[], creds?: Credentials): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(AWS_CLI, ['appmesh', ...args, '--endpoint-url', url, '--output', 'json'], { env: awsEnv(creds), timeout: 60_000 }, (error, stdout, stderr) => {
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr, json });
    });
  });
}

export function sdkClient(url: string, creds: Credentials = TEST_CREDENTIALS, maxAttempts = 1): AppMeshClient {
  // A copy: the SDK annotates the credentials object it is given.
  return new AppMeshClient({ endpoint: url, region: 'us-east-1', credentials: { ...creds }, maxAttempts });
}
