import { useState } from "preact/hooks";
import { api, type Session } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";

interface ArticleRef {
  slug: string;
  title: string;
  summary: string;
  tags?: string[];
  because?: string[];
}
interface Article extends ArticleRef {
  body: string;
  reviewed?: string;
}

export function Articles({ session }: { session?: Session }) {
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [slug, setSlug] = useState<string | null>(null);
  const list = useLoad(async () => {
    const p = new URLSearchParams();
    if (query) p.set("q", query);
    const r = await api<{ articles: ArticleRef[] }>(`/api/v1/articles${query ? "?" + p : ""}`, { area: "articles" });
    return r.data.articles;
  }, [query]);
  const recs = useLoad(async () => {
    if (session?.role !== "patient") return [];
    const r = await api<{ recommendations: ArticleRef[] }>(`/api/v1/recommendations`, { area: "articles" });
    return r.data.recommendations;
  }, []);
  const article = useLoad(async () => {
    if (!slug) return null;
    const r = await api<Article>(`/api/v1/articles/${encodeURIComponent(slug)}`, { area: "articles" });
    return r.data;
  }, [slug]);

  const item = (a: ArticleRef) => (
    <li key={a.slug}>
      <button type="button" class="link" onClick={() => setSlug(a.slug)}>{a.title}</button>
      <div>{a.summary}</div>
      {a.because && a.because.length > 0 && <div class="hint">Because of: {a.because.join(", ")}</div>}
    </li>
  );

  return (
    <>
      <h1>Health library</h1>
      <DegradedBanner area="articles" />
      <div class="grid">
        {slug && (
          <Section title={article.data?.title ?? "Article"} id="h-article">
            <ErrorNote error={article.error} onRetry={article.reload} />
            {article.loading && <Loading what="the article" />}
            {article.data && (
              <article>
                {article.data.body.split(/\n\s*\n/).map((para, i) => <p key={i}>{para}</p>)}
                {article.data.reviewed && <p class="hint">Reviewed {article.data.reviewed}</p>}
              </article>
            )}
            <button type="button" class="secondary" onClick={() => setSlug(null)}>Close the article</button>
          </Section>
        )}
        {session?.role === "patient" && (
          <Section title="For you" id="h-recs">
            <ErrorNote error={recs.error} onRetry={recs.reload} />
            {recs.loading && !recs.data && <Loading what="recommendations" />}
            {recs.data && recs.data.length === 0 && <p>No personal recommendations right now.</p>}
            <ul class="list">{(recs.data ?? []).map(item)}</ul>
          </Section>
        )}
        <Section title="All articles" id="h-all">
          <form class="inline" role="search" onSubmit={(e) => { e.preventDefault(); setQuery(q.trim()); }}>
            <div>
              <label for="article-q">Search the library</label>
              <input id="article-q" type="search" value={q} maxLength={100}
                onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
            </div>
            <button type="submit">Search</button>
          </form>
          <ErrorNote error={list.error} onRetry={list.reload} />
          {list.loading && !list.data && <Loading what="articles" />}
          {list.data && list.data.length === 0 && <p>No articles match.</p>}
          <ul class="list">{(list.data ?? []).map(item)}</ul>
        </Section>
      </div>
    </>
  );
}
