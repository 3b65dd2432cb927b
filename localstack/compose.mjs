// `npm run localstack:up` / `localstack:down`: docker compose with the project's compose file, after
// checking that Docker and its compose plugin are there, so a missing plugin gets a fix and not docker's
// "unknown shorthand flag: 'f'". Plain JS: it runs before anything is built.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const file = path.join(import.meta.dirname, 'docker-compose.yml');
const args = {
  up: ['up', '-d', '--wait'],
  down: ['down', '-v'],
}[process.argv[2] ?? ''];
if (!args) {
  console.error('usage: node localstack/compose.mjs up | down');
  process.exit(2);
}
const probe = (cmd, a) => spawnSync(cmd, a, { encoding: 'utf8' });
if (probe('docker', ['--version']).error) {
  console.error(
    '✖ docker is not installed. LocalStack runs in Docker: install Docker Engine or Docker Desktop.',
  );
  process.exit(1);
}
if (probe('docker', ['compose', 'version']).status !== 0) {
  console.error(
    "✖ the Docker Compose plugin is missing (`docker compose` is not a command here). Install it: Docker Desktop ships it; on Debian/Ubuntu with Docker's apt repository, `sudo apt-get install docker-compose-plugin`.",
  );
  process.exit(1);
}
const run = spawnSync('docker', ['compose', '-f', file, ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
