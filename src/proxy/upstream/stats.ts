// How the upstream modules report statistics without depending on a stats implementation: one callback
// `(name, delta)`. Names are Envoy's, relative to the cluster's scope (`cluster.<name>.` is the caller's
// prefix): counters only ever get positive deltas; gauges (`outlier_detection.ejections_active`,
// `membership_healthy`, `circuit_breakers.default.cx_open`, …) get +n/−n as they move.

export type StatsSink = (name: string, delta: number) => void;

export const noStats: StatsSink = () => {};

/** A sink that keeps the running value of every name it is told about; for tests and simple callers. */
export class StatsCounter {
  readonly values = new Map<string, number>();
  readonly sink: StatsSink = (name, delta) => {
    this.values.set(name, (this.values.get(name) ?? 0) + delta);
  };

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
}
