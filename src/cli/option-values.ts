// Parsers for command-line option values shared by the commands (commander calls them; a bad value is an
// InvalidArgumentError, which commander prints with the option's name).
import { isIP } from 'node:net';
import { InvalidArgumentError } from 'commander';

export function ipAddress(value: string): string {
  if (isIP(value) === 0) throw new InvalidArgumentError(`"${value}" is not an IP address`);
  return value;
}

export function portNumber(value: string): number {
  const p = Number(value);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(`"${value}" is not a port (1-65535)`);
  return p;
}

/** A parser for an Envoy uint32 setting of at least `min` (e.g. a request or session count). */
export function uint32AtLeast(min: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > 4294967295) throw new InvalidArgumentError(`"${value}" is not an integer from ${min} to 4294967295`);
    return n;
  };
}

export function portList(value: string): number[] {
  const ports = value.split(',').map((p) => Number(p.trim()));
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new InvalidArgumentError(`"${value}" is not a comma-separated list of ports`);
  return ports;
}
