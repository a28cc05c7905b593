// axis_harness.cpp -- native Verilator testbench for any top module with FINN's
// stream ports: ap_clk, ap_rst_n, one AXI-stream in (in0_V_TDATA/TVALID/TREADY)
// and one out (out0_V_TDATA/TVALID/TREADY), of any widths.  The model class is
// always Vdut (verilator --prefix Vdut).  Driven by winoforge.hw.rtl.verilator.
//
//   axis_harness IN OUT N_OUT SEED IN_BUBBLE OUT_STALL MAX_CYCLES
//
// IN: one hex word per line (the input beats, in order).  OUT: a first line
// "cycles <total> in <accepted> out <delivered> timeout <0|1>", then one line
// "o <cycle> <hex word>" per output beat, then "i <cycle>" per accepted input
// beat.  IN_BUBBLE / OUT_STALL: per-mille
// probabilities (std::mt19937 seeded with SEED) that the source withholds a new
// beat in a cycle / that the sink deasserts TREADY in a cycle.  A beat once
// offered stays offered (TVALID stays high, TDATA stable) until accepted, as
// AXI-stream requires.  Stops after N_OUT output beats or MAX_CYCLES cycles.
//
// Built with -DWF_WEIGHT_STREAM (a top with runtime-writeable weights: a third
// stream in1_V_TDATA/TVALID/TREADY), two more arguments:
//
//   axis_harness ... MAX_CYCLES W_IN W_AT
//
// W_IN: the weight-stream words, one hex word per line, offered with the same
// bubbles as IN; W_AT -1: no input beat is offered before the last weight word
// is accepted; W_AT >= 0: the weight words are offered from cycle W_AT on, the
// input beats from the first cycle.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "Vdut.h"
#include "verilated.h"

using Word = std::vector<uint32_t>;

static Word parse_hex(const std::string& s) {
    Word w;
    int end = static_cast<int>(s.size());
    while (end > 0) {
        int start = end - 8 < 0 ? 0 : end - 8;
        w.push_back(static_cast<uint32_t>(std::stoul(s.substr(start, end - start), nullptr, 16)));
        end = start;
    }
    if (w.empty()) w.push_back(0);
    return w;
}

static uint32_t at(const Word& w, size_t i) { return i < w.size() ? w[i] : 0u; }

static void set_port(CData& p, const Word& w) { p = static_cast<CData>(at(w, 0)); }
static void set_port(SData& p, const Word& w) { p = static_cast<SData>(at(w, 0)); }
static void set_port(IData& p, const Word& w) { p = at(w, 0); }
static void set_port(QData& p, const Word& w) { p = (static_cast<QData>(at(w, 1)) << 32) | at(w, 0); }
template <std::size_t N>
static void set_port(VlWide<N>& p, const Word& w) {
    for (size_t i = 0; i < N; i++) p[i] = at(w, i);
}

static Word get_port(CData p) { return Word{p}; }
static Word get_port(SData p) { return Word{p}; }
static Word get_port(IData p) { return Word{p}; }
static Word get_port(QData p) { return Word{static_cast<uint32_t>(p), static_cast<uint32_t>(p >> 32)}; }
template <std::size_t N>
static Word get_port(const VlWide<N>& p) {
    Word w(N);
    for (size_t i = 0; i < N; i++) w[i] = p[i];
    return w;
}

static std::string to_hex(const Word& w) {
    std::string s;
    char buf[9];
    for (size_t i = w.size(); i-- > 0;) {
        std::snprintf(buf, sizeof buf, "%08x", w[i]);
        s += buf;
    }
    return s;
}

static bool read_words(const char* path, std::vector<Word>& out) {
    std::ifstream f(path);
    if (!f) {
        std::fprintf(stderr, "cannot read %s\n", path);
        return false;
    }
    for (std::string line; std::getline(f, line);)
        if (!line.empty()) out.push_back(parse_hex(line));
    return true;
}

int main(int argc, char** argv) {
#ifdef WF_WEIGHT_STREAM
    const int nargs = 10;
#else
    const int nargs = 8;
#endif
    if (argc != nargs) {
        std::fprintf(stderr, "usage: %s IN OUT N_OUT SEED IN_BUBBLE OUT_STALL MAX_CYCLES%s\n", argv[0],
                     nargs == 10 ? " W_IN W_AT" : "");
        return 2;
    }
    std::vector<Word> inputs;
    if (!read_words(argv[1], inputs)) return 2;
#ifdef WF_WEIGHT_STREAM
    std::vector<Word> weights;
    if (!read_words(argv[8], weights)) return 2;
    const long w_at = std::stol(argv[9]);
    const bool weights_first = w_at < 0;
    size_t next_w = 0;
    bool w_offered = false;
#endif
    const long n_out = std::stol(argv[3]);
    std::mt19937 rng(static_cast<uint32_t>(std::stoul(argv[4])));
    const int in_bubble = std::stoi(argv[5]);
    const int out_stall = std::stoi(argv[6]);
    const long max_cycles = std::stol(argv[7]);
    std::uniform_int_distribution<int> permille(0, 999);

    VerilatedContext ctx;
    Vdut top(&ctx);
    top.ap_clk = 0;
    top.ap_rst_n = 0;
    top.in0_V_TVALID = 0;
    top.out0_V_TREADY = 0;
#ifdef WF_WEIGHT_STREAM
    top.in1_V_TVALID = 0;
#endif
    for (int i = 0; i < 4; i++) {
        top.ap_clk = 1; top.eval();
        top.ap_clk = 0; top.eval();
    }
    top.ap_rst_n = 1;
    top.eval();

    std::vector<std::pair<long, Word>> outputs;
    std::vector<long> in_cycles;
    size_t next_in = 0;
    bool offered = false;
    long cycle = 0;
    while (static_cast<long>(outputs.size()) < n_out && cycle < max_cycles) {
        bool may_offer = true;
#ifdef WF_WEIGHT_STREAM
        if (!w_offered && next_w < weights.size() && cycle >= w_at && permille(rng) >= in_bubble) {
            set_port(top.in1_V_TDATA, weights[next_w]);
            w_offered = true;
        }
        top.in1_V_TVALID = w_offered;
        may_offer = !weights_first || next_w == weights.size();
#endif
        if (!offered && may_offer && next_in < inputs.size() && permille(rng) >= in_bubble) {
            set_port(top.in0_V_TDATA, inputs[next_in]);
            offered = true;
        }
        top.in0_V_TVALID = offered;
        top.out0_V_TREADY = permille(rng) >= out_stall;
        top.eval();
        const bool in_fire = offered && top.in0_V_TREADY;
#ifdef WF_WEIGHT_STREAM
        const bool w_fire = w_offered && top.in1_V_TREADY;
#endif
        if (top.out0_V_TVALID && top.out0_V_TREADY) outputs.emplace_back(cycle, get_port(top.out0_V_TDATA));
        top.ap_clk = 1; top.eval();
        top.ap_clk = 0; top.eval();
        if (in_fire) {
            in_cycles.push_back(cycle);
            offered = false;
            next_in++;
        }
#ifdef WF_WEIGHT_STREAM
        if (w_fire) {
            w_offered = false;
            next_w++;
        }
#endif
        cycle++;
    }
    std::ofstream fout(argv[2]);
    fout << "cycles " << cycle << " in " << next_in << " out " << outputs.size() << " timeout "
         << (static_cast<long>(outputs.size()) < n_out ? 1 : 0) << "\n";
    for (const auto& o : outputs) fout << "o " << o.first << " " << to_hex(o.second) << "\n";
    for (long c : in_cycles) fout << "i " << c << "\n";
    top.final();
    return 0;
}
