// SPDX-License-Identifier: Apache-2.0
// The gateway's route id (hello_ok.route, PROTOCOL.md §9.8) and the URL a resume reconnects to:
// the connection's URL with `route=<id>`, so a balancer sends the resume to the gateway that
// holds the session. The resume token never goes into a URL (it travels in hello.resume).

const routeId = /^[a-z0-9-]{1,32}$/;

/** Whether `v` is a route id: 1..32 characters of [a-z0-9-]. */
export function isRouteId(v: unknown): v is string {
  return typeof v === 'string' && routeId.test(v);
}

/** `url` with the query parameter `route=<route>` added or replaced; the rest is kept as is. */
export function routeUrl(url: string, route: string): string {
  if (!isRouteId(route)) return url;
  const q = url.indexOf('?');
  const base = q < 0 ? url : url.slice(0, q);
  const kept = (q < 0 ? '' : url.slice(q + 1))
    .split('&')
    .filter((p) => p !== '' && p.split('=', 1)[0] !== 'route');
  kept.push(`route=${route}`);
  return `${base}?${kept.join('&')}`;
}
