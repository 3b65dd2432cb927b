export function threadCpuMs(): number | undefined;
export function processCpuMs(pid: number): number | undefined;
export function peakRssMb(): number | undefined;
