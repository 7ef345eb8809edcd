#include "http/static_site.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace continuum::http {
namespace {

namespace fs = std::filesystem;

std::string Header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

class StaticSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/static-site-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Put("site/index.html", "<!doctype html><title>app</title>");
    Put("site/assets/index-abc123.js", "console.log(1)");
    Put("site/assets/index-abc123.css", "body{}");
    Put("site/favicon.svg", "<svg/>");
    Put("site/.hidden", "no");
    Put("secret.txt", "outside the root");
    fs::create_symlink(dir_ / "secret.txt", dir_ / "site" / "link.txt");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Put(const std::string& rel, const std::string& body) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary) << body;
  }
  StaticSite Site() {
    StaticSiteOptions o;
    o.root = (dir_ / "site").string();
    o.spa_exclude = {"api", "fhir", "metrics", "healthz", "readyz"};
    return StaticSite::Load(o);
  }
  fs::path dir_;
};

TEST(StaticSiteKeyTest, MapsPathsAndRefusesTraversal) {
  EXPECT_EQ(StaticSite::KeyFor("/"), "index.html");
  EXPECT_EQ(StaticSite::KeyFor("/assets/a-1.js"), "assets/a-1.js");
  EXPECT_EQ(StaticSite::KeyFor("/appointments"), "appointments");
  for (const char* bad :
       {"", "assets/a.js", "/..", "/../etc/passwd", "/assets/../index.html", "/./index.html",
        "//etc/passwd", "/assets//a.js", "/assets/", "/a\\..\\b", "/.env", "/C:/x", "/a\x01"})
    EXPECT_FALSE(StaticSite::KeyFor(bad).has_value()) << bad;
  EXPECT_FALSE(StaticSite::KeyFor(std::string("/a\0b", 4)).has_value());
}

TEST(StaticSiteKeyTest, ContentTypes) {
  EXPECT_EQ(StaticSite::ContentTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentTypeFor("assets/x.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentTypeFor("assets/x.css"), "text/css; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentTypeFor("favicon.svg"), "image/svg+xml");
  EXPECT_EQ(StaticSite::ContentTypeFor("blob"), "application/octet-stream");
}

TEST_F(StaticSiteTest, ServesFilesWithCachingAndSecurityHeaders) {
  auto site = Site();
  EXPECT_EQ(site.file_count(), 4u);  // not the hidden file, not the symbolic link
  auto html = site.Serve("GET", "/");
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 200);
  EXPECT_EQ(html->body, "<!doctype html><title>app</title>");
  EXPECT_EQ(html->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Header(*html, "Cache-Control"), "no-store");
  EXPECT_NE(Header(*html, "Content-Security-Policy").find("script-src 'self';"), std::string::npos);
  EXPECT_EQ(Header(*html, "Content-Security-Policy").find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(Header(*html, "X-Frame-Options"), "DENY");
  EXPECT_EQ(Header(*html, "X-Content-Type-Options"), "nosniff");
  auto js = site.Serve("GET", "/assets/index-abc123.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->body, "console.log(1)");
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(*js, "Cache-Control"), "public, max-age=31536000, immutable");
  auto icon = site.Serve("GET", "/favicon.svg");
  ASSERT_TRUE(icon);
  EXPECT_EQ(Header(*icon, "Cache-Control"), "no-cache");
}

TEST_F(StaticSiteTest, HeadAndConditionalGet) {
  auto site = Site();
  auto head = site.Serve("HEAD", "/assets/index-abc123.css");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->head_content_length, 6u);
  std::string etag = Header(*head, "ETag");
  ASSERT_FALSE(etag.empty());
  auto again = site.Serve("GET", "/assets/index-abc123.css", etag);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  EXPECT_FALSE(site.Serve("POST", "/"));
  EXPECT_FALSE(site.Serve("DELETE", "/assets/index-abc123.css"));
}

TEST_F(StaticSiteTest, AppPathsGetIndexApiPathsAreLeftAlone) {
  auto site = Site();
  for (const char* app : {"/appointments", "/provider/patients/12", "/etc/passwd"}) {
    auto r = site.Serve("GET", app);
    ASSERT_TRUE(r) << app;
    EXPECT_EQ(r->status, 200) << app;
    EXPECT_EQ(r->body, "<!doctype html><title>app</title>") << app;
  }
  for (const char* api : {"/api/v1/nothing", "/fhir/R4/Nothing", "/metrics", "/healthz/x"})
    EXPECT_FALSE(site.Serve("GET", api)) << api;
}

TEST_F(StaticSiteTest, TraversalMissingFilesAndLinksAre404) {
  auto site = Site();
  for (const char* bad :
       {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "//tmp/secret.txt",
        "/assets/missing-1.js", "/missing.js", "/.hidden", "/link.txt", "/assets/", "/a/../"}) {
    auto r = site.Serve("GET", bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 404) << bad;
    EXPECT_EQ(r->body.find("outside the root"), std::string::npos) << bad;
    EXPECT_EQ(Header(*r, "X-Content-Type-Options"), "nosniff") << bad;
  }
}

TEST_F(StaticSiteTest, LimitsAndMissingIndexStopTheLoad) {
  StaticSiteOptions o;
  o.root = (dir_ / "site").string();
  o.max_file_bytes = 10;  // index.html is larger
  EXPECT_THROW(StaticSite::Load(o), std::runtime_error);
  o.max_file_bytes = 1 << 20;
  o.max_files = 2;
  EXPECT_THROW(StaticSite::Load(o), std::runtime_error);
  o.max_files = 100;
  o.max_total_bytes = 20;
  EXPECT_THROW(StaticSite::Load(o), std::runtime_error);
  o.root = (dir_ / "site" / "assets").string();  // no index.html
  o.max_total_bytes = 1 << 20;
  EXPECT_THROW(StaticSite::Load(o), std::runtime_error);
  o.root = (dir_ / "nowhere").string();
  EXPECT_THROW(StaticSite::Load(o), std::runtime_error);
}

}  // namespace
}  // namespace continuum::http
