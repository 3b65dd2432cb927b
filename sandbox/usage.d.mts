export function threadCpuMs(): number | undefined;
export function processCpuMs(pid: number): number | undefined;
export function peakRssMb(): number | undefined;
export function cpuByThreadKindMs(): { js: number; gc: number; pool: number; other: number } | undefined;
