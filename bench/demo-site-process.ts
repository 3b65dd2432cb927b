// The demo site in a process of its own, so that what is measured in the bench process (Crawlee, or
// fauxqs for the pipeline) does not share an event loop with the site it fetches from. Prints
// {"hosts": [...], "seeds": [...], "ports": [...]} on its first line; answers each "stats" line on stdin
// with {"requests": n, "connections": n}; serves until its stdin closes.
import { createInterface } from 'node:readline';
import { type DemoSiteOptions, startDemoSite } from '../sandbox/demo-site';

const options = JSON.parse(process.argv[2] ?? '{}') as DemoSiteOptions;
const site = await startDemoSite(options);
process.stdout.write(`${JSON.stringify({ hosts: site.hosts, seeds: site.seeds, ports: site.ports })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'stats')
    process.stdout.write(
      `${JSON.stringify({ requests: site.requestLog.length, connections: site.connectionsOpened() })}\n`,
    );
});
lines.on('close', () => void site.stop().then(() => process.exit(0)));
