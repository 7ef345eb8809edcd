#include "db/hosts.hpp"

#include <gtest/gtest.h>

namespace continuum::db {
namespace {

std::string Ports(const HostList& l) {
  std::string out;
  for (const auto& h : l.hosts) out += (out.empty() ? "" : ",") + h.host + ":" + h.port;
  return out;
}

TEST(DbHosts, ParsesKeywordAndUriForms) {
  auto kv = ParseHosts("host=a,b,c port=1,2,3 dbname=x target_session_attrs=read-write");
  ASSERT_TRUE(kv);
  EXPECT_EQ(Ports(*kv), "a:1,b:2,c:3");
  EXPECT_TRUE(kv->has_host && kv->has_port && !kv->has_hostaddr);
  auto uri = ParseHosts("postgresql://u:p@a:1,b:2/x?connect_timeout=2");
  ASSERT_TRUE(uri);
  EXPECT_EQ(Ports(*uri), "a:1,b:2");
  auto one_port = ParseHosts("host=a,b port=7");  // one port for every host
  ASSERT_TRUE(one_port);
  EXPECT_EQ(Ports(*one_port), "a:7,b:7");
  auto addr = ParseHosts("hostaddr=10.0.0.1,10.0.0.2");
  ASSERT_TRUE(addr);
  EXPECT_TRUE(addr->has_hostaddr && !addr->has_host && !addr->has_port);
}

TEST(DbHosts, OneHostOrAListLibpqWouldRefuseIsNothingToGoOnTo) {
  EXPECT_FALSE(ParseHosts("host=a port=1"));
  EXPECT_FALSE(ParseHosts("postgresql://u@a:1/x"));
  EXPECT_FALSE(ParseHosts("host=a,b port=1,2,3"));
  EXPECT_FALSE(ParseHosts("host=a,b hostaddr=1.2.3.4"));
  EXPECT_FALSE(ParseHosts("not a conninfo ="));
}

TEST(DbHosts, TheHostsAfterTheOneThatFailed) {
  auto l = ParseHosts("host=a,a,b port=1,2,1");
  ASSERT_TRUE(l);
  auto after = HostsAfter(*l, "a", "1");
  ASSERT_TRUE(after);
  EXPECT_EQ(Ports(*after), "a:2,b:1");
  auto after2 = HostsAfter(*after, "a", "2");
  ASSERT_TRUE(after2);
  EXPECT_EQ(Ports(*after2), "b:1");
  EXPECT_FALSE(HostsAfter(*after2, "b", "1")) << "the last host: libpq tried them all";
  EXPECT_FALSE(HostsAfter(*l, "c", "1")) << "not in the list";
  EXPECT_FALSE(HostsAfter(*l, "a", "9"));
}

TEST(DbHosts, KeywordsReplaceTheUrlsHostsAndOnlyThose) {
  auto l = ParseHosts("hostaddr=10.0.0.1,10.0.0.2,10.0.0.3 port=5432");
  ASSERT_TRUE(l);
  auto rest = HostsAfter(*l, "10.0.0.1", "5432");
  ASSERT_TRUE(rest);
  std::vector<const char*> keys = {"dbname"}, values = {"x"};
  std::array<std::string, 3> storage;
  rest->AppendKeywords(keys, values, storage);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_STREQ(keys[1], "hostaddr");
  EXPECT_STREQ(values[1], "10.0.0.2,10.0.0.3");
  EXPECT_STREQ(keys[2], "port");
  EXPECT_STREQ(values[2], "5432,5432");
}

}  // namespace
}  // namespace continuum::db
