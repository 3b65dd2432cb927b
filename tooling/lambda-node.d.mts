export function nodeOfMajor(
  major: number,
  options?: { log?: (line: string) => void },
): { path?: string; why?: string };
export function nodeOfRuntime(
  runtime: string | undefined,
  options?: { log?: (line: string) => void },
): { path?: string; why?: string };
