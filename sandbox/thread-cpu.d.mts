export function threadCpuMs(): number | undefined;
