/** Pacing of the bulk streams, so that the soak's load leaves CPU to the proxy (and to whatever else runs). */

/** A pacer shared by every large stream: at most `bytesPerSecond`, in bursts of at most 50 ms. */
export const pacer = (bytesPerSecond: number) => {
  let next = performance.now()
  return async (n: number): Promise<void> => {
    const t = performance.now()
    next = Math.max(next, t - 50) + (n / bytesPerSecond) * 1000
    if (next > t) await new Promise((resolve) => setTimeout(resolve, next - t))
  }
}
