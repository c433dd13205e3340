// The instruction-set table of a C++ kernel (csrc/memory.cpp, csrc/dropout.cpp): its loops compiled once per
// instruction set, the ones this CPU can run (narrowest first), the one in use (the widest unless chosen), and the
// three Python functions that show and change it: isa(), available_isas(), set_isa(name).
//
// Loops is the kernel's struct of function pointers; its first member is `const char* name`.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

namespace mtl_isa {

template <class Loops>
class IsaTable {
public:
    // kernel: how error messages name it, e.g. "dropout kernel".
    IsaTable(std::vector<Loops> all, std::string kernel)
        : all_(std::move(all)), kernel_(std::move(kernel)), current_(all_.size() - 1) {}

    const Loops& current() const { return all_[current_.load(std::memory_order_relaxed)]; }

    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const Loops& l : all_) out.emplace_back(l.name);
        return out;
    }

    // Use the instruction set `name`; false (nothing changed) when this CPU has none of that name.
    bool try_select(const std::string& name) {
        for (size_t i = 0; i < all_.size(); ++i)
            if (name == all_[i].name) {
                current_.store(i);
                return true;
            }
        return false;
    }

    // As try_select, but an unknown name is a ValueError naming the available ones.
    void select(const std::string& name) {
        if (try_select(name)) return;
        std::string valid;
        for (const Loops& l : all_) valid += std::string(valid.empty() ? "" : ", ") + l.name;
        throw pybind11::value_error(kernel_ + ": instruction set '" + name + "' is not available on this CPU (" +
                                    valid + ")");
    }

    // isa(), available_isas() and set_isa(name) on module m; `table` must outlive the module (a function static).
    static void bind(pybind11::module_& m, IsaTable& table) {
        using namespace pybind11::literals;
        m.def("isa", [&table]() { return std::string(table.current().name); },
              "The instruction set the kernel's loops use now.");
        m.def("available_isas", [&table]() { return table.names(); },
              "Instruction sets this CPU can run, narrowest first.");
        m.def("set_isa", [&table](const std::string& name) { table.select(name); }, "name"_a,
              "Use another available instruction set (for tests and benchmarks).");
    }

private:
    std::vector<Loops> all_;
    std::string kernel_;
    std::atomic<size_t> current_;
};

}  // namespace mtl_isa
