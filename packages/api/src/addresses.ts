// Parsing the host[:port] addresses users give `swarm init` (and later `swarm join`): IP literals only, so a
// typo is refused at the API with the field named instead of failing later inside a listener.

import { isIP } from 'node:net';
import { ApiError } from './errors.js';

export interface HostPort {
  host: string;
  /** null when the user gave no port. */
  port: number | null;
}

/** 'IP', 'IP:PORT', 'IPv6' or '[IPv6]:PORT'. */
export function parseHostPort(value: string, field: string): HostPort {
  const bad = (why: string): ApiError =>
    new ApiError('invalid_argument', `${field} ${JSON.stringify(value)} is not valid: ${why} (expected IP or IP:PORT, e.g. 10.0.0.1:2377)`);
  const text = value.trim();
  if (text === '') throw bad('it is empty');
  let host: string;
  let portText: string | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    portText = bracketed[2] ?? null;
    if (isIP(host) !== 6) throw bad(`${host} is not an IPv6 address`);
  } else if (isIP(text) !== 0) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) throw bad('the host is not an IP address');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (isIP(host) !== 4) throw bad(`${host} is not an IP address (write IPv6 with a port as [addr]:port)`);
  }
  let port: number | null = null;
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText)) throw bad(`port ${JSON.stringify(portText)} is not a number`);
    port = Number(portText);
    if (port < 1 || port > 65535) throw bad(`port ${port} is outside 1-65535`);
  }
  return { host, port };
}

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
