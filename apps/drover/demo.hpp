#pragma once

namespace drover::apps {
int run_demo();
}
