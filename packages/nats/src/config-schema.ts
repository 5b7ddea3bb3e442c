/*
 * The zod pieces every service's configuration shares: the NATS server and JetStream domain,
 * HOST:PORT and simple names, whole numbers given as digits, and the one way a config is
 * parsed (undefined or '' is not given; every bad or unknown key reported at once). Here
 * because every service already depends on this package and services never import each other.
 */
import { z } from 'zod';
import { InvalidArgumentError } from '@vmferry/core';

/** HOST:PORT, with an IPv6 host in brackets. */
export const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
/** A site, node or scheduler name. */
export const SIMPLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** One or more nats:// URLs, comma-separated. */
export const NATS_URL = /^nats:\/\/\S+$/;
export const NATS_URL_MESSAGE = 'nats must be a nats:// URL (comma-separate several)';

/** The NATS server a coordination service cannot run without. */
export function natsUrlRequired() {
  return z.string({ error: 'the NATS server is required (--nats URL or VMFERRY_NATS)' }).regex(NATS_URL, NATS_URL_MESSAGE);
}

/** A JetStream domain (a leaf node's hub), when given. */
export function jsDomain() {
  return z.string().min(1).optional();
}

/**
 * A whole number in [min, max], given as a number or as decimal digits (flags and the
 * environment are strings). `Number()` would take "x" as NaN, "" as 0 and "1e3" as 1000.
 */
export function wholeNumber(name: string, min: number, max: number) {
  const message = `${name} must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message }),
  );
}

/** The entries of `o` whose value is defined: overrides (flags) that were given. */
export function definedEntries(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * Pure: validates `input` against `schema`. Keys whose value is undefined or '' count as not given.
 * @throws InvalidArgumentError "bad <what> configuration:" then every bad or unknown key, one a line.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: Readonly<Record<string, unknown>>, what: string): z.output<S> {
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== ''));
  const r = schema.safeParse(given);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new InvalidArgumentError(`bad ${what} configuration:\n  ${problems.join('\n  ')}`);
  }
  return r.data;
}
