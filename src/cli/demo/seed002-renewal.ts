// Traffic across a certificate renewal: rounds of requests go on while the renewal is made and reaches the
// proxy, until new handshakes show the new certificate. What it returns is what the seed's "managed renewal"
// promises to check: how many requests, how many failed (should be none), and which certificate the
// handshakes got, in order (old, then new, never back).

/** One round of traffic: did everything in it succeed, and which certificate did its new handshake get. */
export interface Round {
  readonly ok: boolean;
  /** The serial of the certificate presented, if a handshake happened. */
  readonly serial: string | undefined;
  /** What went wrong, when not ok. */
  readonly problem?: string;
}

/** Consecutive rounds that saw the same certificate. */
export interface SerialRun {
  readonly serial: string;
  readonly rounds: number;
}

export interface RenewalTraffic<T> {
  readonly renewed: T;
  readonly rounds: readonly Round[];
  readonly failed: readonly Round[];
  /** The certificates the handshakes got, in order: [old, new] when the switch happened once and for good. */
  readonly runs: readonly SerialRun[];
  readonly elapsedMs: number;
}

export interface RenewalTrafficOptions<T> {
  readonly round: () => Promise<Round>;
  /** Starts once `warmup` rounds have run; traffic goes on while it is under way. */
  readonly renew: () => Promise<T>;
  /** The serial the renewed certificate has. */
  readonly newSerial: (renewed: T) => string;
  readonly warmup: number;
  /** How many rounds in a row must see the new certificate before the traffic stops. */
  readonly settled: number;
  /** Bounds: the traffic stops with an error past either. */
  readonly maxRounds: number;
  readonly timeoutMs: number;
}

/** Consecutive equal serials folded: a, a, b, b, b → [a×2, b×3]; rounds without a handshake are left out. */
export function serialRuns(rounds: readonly Round[]): SerialRun[] {
  const runs: SerialRun[] = [];
  for (const { serial } of rounds) {
    if (serial === undefined) continue;
    const last = runs.at(-1);
    if (last?.serial === serial) runs[runs.length - 1] = { serial, rounds: last.rounds + 1 };
    else runs.push({ serial, rounds: 1 });
  }
  return runs;
}

/**
 * Runs rounds one after the other, starts the renewal after the warm-up, and stops once the renewal has
 * answered and `settled` rounds in a row saw its serial. Throws when a bound is reached first (or when the
 * renewal fails), saying how far it got.
 */
export async function trafficAcrossRenewal<T>(o: RenewalTrafficOptions<T>): Promise<RenewalTraffic<T>> {
  const started = Date.now();
  const rounds: Round[] = [];
  let renewal: Promise<T> | undefined;
  let renewed: { value: T } | undefined;
  let renewError: { error: unknown } | undefined;
  let streak = 0;
  while (rounds.length < o.maxRounds && Date.now() - started < o.timeoutMs) {
    const r = await o.round();
    rounds.push(r);
    if (renewError) throw renewError.error;
    if (renewed && r.serial === o.newSerial(renewed.value)) streak += 1;
    else streak = 0;
    if (renewed && streak >= o.settled) {
      return { renewed: renewed.value, rounds, failed: rounds.filter((x) => !x.ok), runs: serialRuns(rounds), elapsedMs: Date.now() - started };
    }
    if (!renewal && rounds.length >= o.warmup) {
      renewal = o.renew();
      renewal.then((value) => { renewed = { value }; }, (error: unknown) => { renewError = { error }; });
    }
  }
  if (renewal) await renewal.catch(() => undefined);
  if (renewError) throw renewError.error;
  const seen = serialRuns(rounds).map((x) => `${x.serial} x${x.rounds}`).join(', then ') || 'none';
  throw new Error(`after ${rounds.length} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s, ${renewed
    ? `the handshakes did not settle on the renewed certificate ${o.newSerial(renewed.value)} (certificates seen: ${seen})`
    : 'the renewal had not answered'}`);
}
