-- Keep objects' JSON uncompressed: pglz compression of every object
-- larger than about 2 KB dominated bulk ingest (ATT&CK), and reads then
-- skip decompression. Applies to rows written from now on.
ALTER TABLE objects ALTER COLUMN raw SET STORAGE EXTERNAL;
