/** Thrown at module load when a required environment variable is missing, so a misconfigured function fails fast. */
export class MissingEnvError extends Error {
  constructor(name: string) {
    super(
      `Environment variable ${name} is required but not set. The stack sets it; set it yourself when running the handler locally.`,
    );
    this.name = 'MissingEnvError';
  }
}

/** Read a required string variable. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new MissingEnvError(name);
  return value;
}

/** Read an optional positive integer variable, falling back to `fallback`. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`Environment variable ${name} must be a non-negative integer, got "${raw}".`);
  }
  return value;
}
