#include "pipeline/partitioner.h"

#include <gtest/gtest.h>

namespace boxwatch::pipeline {
namespace {

// Reference values of Kafka's Java Utils.murmur2, as published in Kafka's own
// UtilsTest (testMurmur2): the signed 32-bit results for these byte strings.
TEST(Murmur2, MatchesKafkaJavaReferenceValues) {
  EXPECT_EQ(static_cast<int32_t>(Murmur2("21")), -973932308);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("foobar")), -790332482);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")),
            -58897971);
  EXPECT_EQ(static_cast<int32_t>(Murmur2(std::string_view("abc", 3))), 479470107);
}

TEST(JavaPartition, IsStableAndInRange) {
  for (int32_t n : {1, 3, 8, 12, 64}) {
    const int32_t p = JavaPartition("CSQU3054383", n);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, n);
    EXPECT_EQ(p, JavaPartition("CSQU3054383", n));
  }
}

}  // namespace
}  // namespace boxwatch::pipeline
