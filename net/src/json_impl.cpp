// Boost.JSON compiled once, header-only (Debian's libboost-json is not needed).
#include <boost/json/src.hpp>
