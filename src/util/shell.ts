// Quoting for the copy-ready command lines porthole prints (POSIX sh).

const SAFE = /^[A-Za-z0-9_/.:@%+=,-]+$/;

/** One argument, quoted for sh: left bare when it has only safe characters. */
export function shellQuote(arg: string): string {
  if (SAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A command line from its argv, each argument quoted for sh. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * How to run this same porthole CLI again from a shell: the node binary and the script
 * that is running now. Never `npx porthole`: outside a project that depends on porthole,
 * npx would fetch whatever the registry calls "porthole" (and inside this checkout it
 * installs the checkout into its cache, rebuilding dist/ as it does).
 */
export function selfCommand(): string[] {
  const script = process.argv[1];
  return script ? [process.execPath, script] : [process.execPath];
}
