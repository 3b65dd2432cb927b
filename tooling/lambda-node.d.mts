export function nodeOfMajor(
  major: number,
  options?: { log?: (line: string) => void },
): { path?: string; why?: string };
