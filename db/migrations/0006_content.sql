-- Low tier: the health-article library (content/articles.json, loaded by
-- `continuum content load` and by `continuum seed`). `codes` links an article to the
-- SNOMED CT conditions and RxNorm medications it is about, for recommendations.
-- Reference content, not patient data: it is reloadable, so it commits locally.
CREATE TABLE article (
  id          bigserial PRIMARY KEY,
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  title       text NOT NULL,
  summary     text NOT NULL,
  body        text NOT NULL,
  tags        text[] NOT NULL DEFAULT '{}',
  codes       text[] NOT NULL DEFAULT '{}',
  reviewed    date,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_codes_idx ON article USING gin (codes);
CREATE INDEX article_tags_idx ON article USING gin (tags);
