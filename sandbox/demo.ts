import type { Sandbox } from './sandbox';

/**
 * What `npm start -- --stack <Name>-<stage>` runs once the sandbox is up: the module `demos/<name>.ts`
 * (the stack name's first word, lowercased: Crawler-dev → demos/crawler.ts), exporting `demo`. A stack with
 * no demo module still starts: its queues are listed and the sandbox runs until Ctrl-C.
 */
export interface Demo {
  /** The demo's own arguments, shown under the generic ones by `npm start -- --help`. */
  readonly usage: string;
  /** Check the demo's arguments before anything starts; throw DemoUsageError (one line, exit 2) if they can never work. */
  parse(argv: string[]): unknown;
  /** Start what the functions need besides the sandbox (a site to crawl), with the environment they need for it. */
  prepare?(args: unknown): Promise<{ functionEnv?: Record<string, string>; stop(): Promise<void> }>;
  /** Drive the pipeline and print what happened. `ok: false` makes `npm start` exit 1. */
  run(
    sandbox: Sandbox,
    args: unknown,
    log: (line: string) => void,
  ): Promise<{ ok: boolean; keepHints?: string[] }>;
}

/** Demo arguments that can never work. */
export class DemoUsageError extends Error {}
