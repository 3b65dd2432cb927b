// Crawlee's CheerioCrawler in a process of its own, so the bench can run it on the same Node as the
// functions (the Lambda runtime's major) and measure its CPU alone. Reads its settings as JSON from argv,
// prints {"pages", "seconds", "cpuMs", "jsCpuMs"} as its last line.
import { CheerioCrawler, Configuration, log as crawleeLog, LogLevel } from '@crawlee/cheerio';
import { threadCpuMs } from '../sandbox/usage.mjs';

const settings = JSON.parse(process.argv[2] ?? '{}') as {
  seeds: string[];
  hosts: string[];
  concurrency: number;
  maxRequests: number;
  navigationTimeoutSecs: number;
  maxRequestRetries: number;
};
crawleeLog.setLevel(LogLevel.OFF);
const allowed = new Set(settings.hosts);
let pages = 0;
const crawler = new CheerioCrawler(
  {
    minConcurrency: settings.concurrency,
    maxConcurrency: settings.concurrency,
    maxRequestsPerCrawl: settings.maxRequests,
    maxRequestRetries: settings.maxRequestRetries,
    requestHandlerTimeoutSecs: 10,
    navigationTimeoutSecs: settings.navigationTimeoutSecs,
    respectRobotsTxtFile: true,
    async requestHandler({ $, enqueueLinks }) {
      pages++;
      $('title').text();
      await enqueueLinks({
        strategy: 'all',
        transformRequestFunction: (req) => (allowed.has(new URL(req.url).host) ? req : false),
      });
    },
  },
  new Configuration({ persistStorage: false, purgeOnStart: true }),
);
const started = Date.now();
const cpu = process.cpuUsage();
const js = threadCpuMs();
await crawler.run(settings.seeds);
const used = process.cpuUsage(cpu);
const jsNow = threadCpuMs();
process.stdout.write(
  `${JSON.stringify({
    pages,
    seconds: (Date.now() - started) / 1000,
    cpuMs: (used.user + used.system) / 1000,
    ...(js === undefined || jsNow === undefined ? {} : { jsCpuMs: jsNow - js }),
  })}\n`,
);
