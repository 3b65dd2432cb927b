-- The exact inbound-link ranking of one crawl, read from its edge log (functions/crawl/link-graph.ts
-- writes it): each URL with the number of distinct pages that link to it. An edge logged twice, by a
-- redelivered message, is counted once. `?` is the crawl id.
-- This one file runs on Athena over S3 on AWS and on DuckDB over the sandbox's objects
-- (tooling/ranking.ts), so it keeps to SQL both engines read the same way.
SELECT dst AS url, COUNT(DISTINCT src) AS inlinks
FROM edges
WHERE crawl_id = ? AND src <> dst
GROUP BY dst
ORDER BY inlinks DESC, url
