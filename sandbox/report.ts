/** Why a crawl stored no page, in one line, from its URLs' outcomes (outcome → count). */
export function whyNothingStored(outcomes: ReadonlyMap<string, number>): string {
  const seen = [...outcomes.keys()];
  const counts = [...outcomes].map(([k, v]) => `${k} ${v}`).join(', ');
  if (seen.length > 0 && seen.every((o) => o === 'dns-error'))
    return `no page stored: the seeds could not be resolved (dns-error); is this machine offline? Without internet, run \`npm start\` with no URL to crawl the bundled demo site.`;
  if (seen.length > 0 && seen.every((o) => o === 'skipped-robots'))
    return 'no page stored: robots.txt disallows the seeds for this crawler.';
  return `no page stored (outcomes: ${counts || 'none'}); see the function logs for each URL's detail.`;
}
