#pragma once
// Everything an embedding service needs.
#include "drover/node.hpp"
#include "drover/task_handle.hpp"
