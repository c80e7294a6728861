#pragma once
// Two readings of a record header (the plain scan and the event parser;
// a JSON header and its compact twin) must answer every lookup alike.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "drover/net/record_header.hpp"

namespace drover::test_support {

/// Every key in `keys` reads the same from `a` and `b`, whatever its type
/// (a name from the compact table looked up by its code, any other by
/// name); `text` names the header in a failure.
inline void expect_same_fields(const net::record_header& a, const net::record_header& b,
                               const std::vector<std::string>& keys, const std::string& text) {
  for (const auto& name : keys) {
    const auto key = net::record_key::named(name);
    EXPECT_EQ(a.contains(key), b.contains(key)) << name << " in " << text;
    EXPECT_EQ(a.uint(key), b.uint(key)) << name << " in " << text;
    EXPECT_EQ(a.string(key), b.string(key)) << name << " in " << text;
    EXPECT_EQ(a.boolean(key), b.boolean(key)) << name << " in " << text;
    const auto* x = a.nested(key);
    const auto* y = b.nested(key);
    ASSERT_EQ(x == nullptr, y == nullptr) << name << " in " << text;
    if (x) {
      EXPECT_EQ(*x, *y) << name << " in " << text;
    }
  }
}

}  // namespace drover::test_support
