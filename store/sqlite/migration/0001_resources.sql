-- Control-plane resources: one row per model, endpoint config, endpoint or
-- inference component. doc holds the kind-specific JSON document.
CREATE TABLE resources (
	kind               TEXT    NOT NULL,
	account            TEXT    NOT NULL,
	region             TEXT    NOT NULL,
	name_key           TEXT    NOT NULL, -- lower-cased name: names are unique regardless of case
	name               TEXT    NOT NULL,
	arn                TEXT    NOT NULL,
	creation_time      INTEGER NOT NULL, -- unix nanoseconds
	last_modified_time INTEGER NOT NULL,
	status             TEXT    NOT NULL DEFAULT '',
	doc                BLOB    NOT NULL,
	PRIMARY KEY (kind, account, region, name_key)
);

CREATE TABLE tags (
	arn   TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (arn, key)
);
