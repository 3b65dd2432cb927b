export type Counts = Record<string, { requests: number; units: number }>;
export function newCounts(): Counts;
export function installMeter(counts: Counts): void;
export function mergeCounts(into: Counts, from: Counts): void;
export function meterClient(client: { middlewareStack: unknown }, counts: Counts, also?: Counts): void;
