// winoforge_thresholds: FINN's multi-thresholding of an accumulator stream as plain
// SystemVerilog (the activation of an MVAU with noActivation = 0).  Beat b of a vector
// carries channels (b mod NF)*PE + p, p < PE; output p of that beat is
// ACT_BIAS + #{k : x[p] >= T[(b mod NF)*PE + p][k]} in OUT_W bits (two's complement),
// FINN's MultiThreshold with out_bias = ActVal.
//
// A binary search, one count bit per pipeline stage: the count depends on the thresholds'
// multiset only, so the generator (winoforge.hw.rtl_ops) sorts each channel's thresholds and
// pads them to 2^K - 1, K = clog2(N_THRES + 1), with the largest IN_W-bit value (above every
// input: the MVAU's accumulator has a bit of headroom).  Stage s (s < K) decides count bit
// K-1-s: with c the bits decided so far, x >= T[c + 2^(K-1-s) - 1] sets it.  Its thresholds are
// a ROM of PE * 2^FB * 2^s words (FB = clog2(NF)), address {lane, fold, c's top s bits}, word
// T[fold*PE + lane][(j << (K-s)) + 2^(K-1-s) - 1], loaded by $readmemh(THRESH_FILE_<s>); read
// synchronously in the cycle before the stage compares (the address from the previous stage's
// count), so a large stage may map to block RAM.  The whole table is NF*PE*(2^K - 1) words, as
// for comparators in parallel, but each stage compares one word per lane: K comparators per lane
// instead of N_THRES and a count tree (the ResNet-8 projection 32 -> 64 with 31 thresholds
// measured 1,315 LUTs that way by Yosys).
// Latency K + 1 cycles, one vector beat a cycle; everything stalls while the output register is
// held.  N_THRES <= 255 (eight stages: OUT_W up to 8 bits of count).
module winoforge_thresholds #(
    parameter int PE = 1,
    parameter int NF = 1,        // channel folds: channels / PE
    parameter int IN_W = 16,     // signed input (and threshold) width
    parameter int N_THRES = 1,
    parameter int OUT_W = 4,
    parameter int ACT_BIAS = 0,
    parameter THRESH_FILE_0 = "",
    parameter THRESH_FILE_1 = "",
    parameter THRESH_FILE_2 = "",
    parameter THRESH_FILE_3 = "",
    parameter THRESH_FILE_4 = "",
    parameter THRESH_FILE_5 = "",
    parameter THRESH_FILE_6 = "",
    parameter THRESH_FILE_7 = ""
) (
    input  logic                 ap_clk,
    input  logic                 ap_rst_n,
    input  logic [PE*IN_W-1:0]   in_data,
    input  logic                 in_valid,
    output logic                 in_ready,
    output logic [PE*OUT_W-1:0]  out_data,
    output logic                 out_valid,
    input  logic                 out_ready
);
    localparam int K = $clog2(N_THRES + 1);                      // stages
    localparam int FB = NF > 1 ? $clog2(NF) : 0;                 // fold bits of a ROM address
    localparam int FW = FB > 0 ? FB : 1;
    localparam int LB = PE > 1 ? $clog2(PE) : 0;                 // lane bits

    assign in_ready = !out_valid || out_ready;
    wire en = in_ready;
    wire take = in_valid && en;

    logic [FW-1:0] fold;               // the next input beat's fold
    logic [K-1:0] v;                   // stage s holds a beat
    logic [K*FW-1:0] f;                // its fold
    logic [K*PE*IN_W-1:0] x;           // its inputs
    logic [K*PE*K-1:0] c;              // its count bits decided before stage s (the others 0)
    logic [K*PE*IN_W-1:0] t;           // the thresholds stage s compares with
    logic [K*PE*K-1:0] cn;             // its count after stage s

    always_comb
        for (int s = 0; s < K; s++)
            for (int p = 0; p < PE; p++)
                cn[(s*PE + p)*K +: K] = c[(s*PE + p)*K +: K]
                    | (($signed(x[(s*PE + p)*IN_W +: IN_W]) >= $signed(t[(s*PE + p)*IN_W +: IN_W]))
                       ? K'(1) << (K - 1 - s) : K'(0));

    for (genvar s = 0; s < K; s++) begin : g_stage
        localparam int AW = LB + FB + s > 0 ? LB + FB + s : 1;
        logic [IN_W-1:0] rom [PE << (FB + s)];
        if (s == 0) begin : g_init initial if (THRESH_FILE_0 != "") $readmemh(THRESH_FILE_0, rom); end
        else if (s == 1) begin : g_init initial if (THRESH_FILE_1 != "") $readmemh(THRESH_FILE_1, rom); end
        else if (s == 2) begin : g_init initial if (THRESH_FILE_2 != "") $readmemh(THRESH_FILE_2, rom); end
        else if (s == 3) begin : g_init initial if (THRESH_FILE_3 != "") $readmemh(THRESH_FILE_3, rom); end
        else if (s == 4) begin : g_init initial if (THRESH_FILE_4 != "") $readmemh(THRESH_FILE_4, rom); end
        else if (s == 5) begin : g_init initial if (THRESH_FILE_5 != "") $readmemh(THRESH_FILE_5, rom); end
        else if (s == 6) begin : g_init initial if (THRESH_FILE_6 != "") $readmemh(THRESH_FILE_6, rom); end
        else begin : g_init initial if (THRESH_FILE_7 != "") $readmemh(THRESH_FILE_7, rom); end
        for (genvar p = 0; p < PE; p++) begin : g_lane
            // the fold and count the read is for: the input beat's (s = 0) or stage s-1's result
            logic [FW-1:0] rf;
            logic [K-1:0] rc;
            if (s == 0) begin : g_src
                assign rf = fold;
                assign rc = '0;
            end else begin : g_src
                assign rf = f[(s - 1)*FW +: FW];
                assign rc = cn[((s - 1)*PE + p)*K +: K];
            end
            // {lane, fold, rc's top s bits}: the lane bits are constant, so a LUT ROM keeps its words only
            wire [31:0] a = (32'(p) << (FB + s)) | (FB > 0 ? 32'(rf) << s : 32'(0)) | 32'(rc >> (K - s));
            always_ff @(posedge ap_clk)
                if (en) t[(s*PE + p)*IN_W +: IN_W] <= rom[a[AW-1:0]];
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) begin
            x[0 +: PE*IN_W] <= in_data;
            c[0 +: PE*K] <= '0;
            f[0 +: FW] <= fold;
            for (int s = 1; s < K; s++) begin
                x[s*PE*IN_W +: PE*IN_W] <= x[(s - 1)*PE*IN_W +: PE*IN_W];
                c[s*PE*K +: PE*K] <= cn[(s - 1)*PE*K +: PE*K];
                f[s*FW +: FW] <= f[(s - 1)*FW +: FW];
            end
            for (int p = 0; p < PE; p++)
                out_data[p*OUT_W +: OUT_W] <= OUT_W'(ACT_BIAS) + OUT_W'(cn[((K - 1)*PE + p)*K +: K]);
        end
        if (!ap_rst_n) begin
            fold <= '0;
            v <= '0;
            out_valid <= 1'b0;
        end else if (en) begin
            if (take) fold <= (fold == FW'(NF - 1)) ? '0 : fold + 1'b1;
            for (int s = K - 1; s > 0; s--) v[s] <= v[s - 1];
            v[0] <= take;
            out_valid <= v[K - 1];
        end
    end
endmodule
