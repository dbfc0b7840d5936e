/** Calls per second of `f` from `callers` independent loops, each calling again as soon as its call returns, for `seconds`. */
export async function byCallers(f: () => unknown, seconds: number, callers: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      await f();
      n++;
    }
  };
  await Promise.all(Array.from({ length: callers }, loop));
  return n / ((performance.now() - start) / 1000);
}
