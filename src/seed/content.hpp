// The health-article library (content/articles.json) and its loader, `continuum content
// load`: validates every article, then upserts them all in one transaction (an article
// whose text did not change is left as it is). Idempotent; `continuum seed` runs it too.
#pragma once

#include <string>

#include "core/secret.hpp"

namespace continuum::seed {

struct ContentResult {
  int articles = 0;  // in the file
  int changed = 0;   // inserted or updated
};

// Throws std::runtime_error naming the article and field that is wrong, or the
// database error.
ContentResult LoadArticles(const Secret& database_url, const std::string& file);

// The library shipped with Continuum.
std::string DefaultArticlesFile();

}  // namespace continuum::seed
