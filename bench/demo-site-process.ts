// The demo site in a process of its own, so a CPU measurement of the bench process counts only the crawler
// under test. Prints {"hosts": [...], "seeds": [...]} on its first line, and serves until its stdin closes.
import { type DemoSiteOptions, startDemoSite } from '../sandbox/demo-site';

const options = JSON.parse(process.argv[2] ?? '{}') as DemoSiteOptions;
const site = await startDemoSite(options);
process.stdout.write(`${JSON.stringify({ hosts: site.hosts, seeds: site.seeds })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void site.stop().then(() => process.exit(0)));
