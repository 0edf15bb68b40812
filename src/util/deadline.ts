/** Waiting with a bound: shutdown and start-up steps that must never hang on an unreachable Redis. */

/** True if `p` settled within `ms` (a rejection counts as settled); false once `ms` passed first. */
export async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const settled = p.then(
    () => true as const,
    () => true as const,
  );
  const done = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return done;
}
