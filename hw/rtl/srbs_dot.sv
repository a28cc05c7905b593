// srbs_dot -- one SRBS multiply-accumulate lane group of the WinogradSRBS PE
// array: one Winograd position, one output channel, SIMD input channels.
//
// An arithmetic unit of the WinogradSRBS layer (winoforge.hw.winograd_op), not
// the streaming layer (no V buffer, weight memories, POS/PE replication).
//
// Per beat: SIMD values V (SIMD consecutive input channels = SIMD/SUBROW
// sub-rows of SUBROW channels) and, per sub-row s, KEEP stored (value, index)
// pairs.  Lane l = s*KEEP + k (N = SIMD/SUBROW*KEEP lanes, the layout of
// winoforge.hw.winograd_op.weight_memory_words) selects channel
// s*SUBROW + idx[l] with a mux, multiplies it by w[l] (signed multiply; an
// unsigned weight is zero-extended first) and an adder tree sums the N
// products.  The accumulator adds the sums over the input-channel folds of
// one output: a beat with in_first starts a new sum, the beat with in_last
// ends it, and out_sum is then presented with out_valid (in_first and in_last
// may both be set: a single fold).  An index >= SUBROW selects 0.
//
// Widths (winoforge.hw.rtl.unit_parameters("srbs_dot", ...) computes them
// from winograd.bit_growth): V_W the input-transform width, PROD_W the exact
// product range, SUM_W the exact range of N products, ACC_W that of
// cin*KEEP/SUBROW products (the layer's accumulator).  Products are truncated
// to PROD_W, tree level d holds min(SUM_W, PROD_W + d) bits, the sum is sign
// extended (or truncated) to ACC_W: arithmetic modulo 2^width, exact whenever
// V and w lie in the ranges the widths were computed for.
//
// Pipeline (valid/ready with a global stall, in_ready = !out_valid || out_ready):
// MUL_REG (0/1) registers after the multipliers, TREE_REG_EVERY = k > 0 a
// register after every k-th adder-tree level (and always after the last one),
// 0 none; then the accumulator register.  Latency from an accepted beat to its
// accumulator update: LATENCY = MUL_REG + tree registers + 1 cycles
// (winoforge.hw.rtl.srbs_dot_latency); out_valid rises LATENCY cycles after
// the in_last beat and holds (stalling the pipeline) until out_ready.
//
// MUL_LUT = 1 writes each multiplier as shift-and-add partial products, so no
// synthesis tool infers a DSP block where the layer's estimate counts LUT
// multipliers (mult_style "lut"); the product is the same.
//
// Packing (element 0 at the LSBs): in_v[c*V_W +: V_W], in_w[l*W_W +: W_W],
// in_idx[l*IDX_W +: IDX_W] (IDX_W >= 1; ignored when SUBROW = 1).

module srbs_dot #(
    parameter int SIMD           = 8,
    parameter int SUBROW         = 4,
    parameter int KEEP           = 2,
    parameter int V_W            = 10,  // V element width (two's complement)
    parameter int W_W            = 8,   // weight width
    parameter int W_SIGNED       = 1,   // 1: signed weights, 0: unsigned
    parameter int IDX_W          = 2,   // index width, max(1, ceil(log2(SUBROW)))
    parameter int PROD_W         = 18,
    parameter int SUM_W          = 21,
    parameter int ACC_W          = 24,
    parameter int MUL_REG        = 1,
    parameter int TREE_REG_EVERY = 1,
    parameter int MUL_LUT        = 0    // 1: shift-and-add multipliers (LUTs), 0: '*' (DSPs where the tool maps them)
) (
    input  logic                                         ap_clk,
    input  logic                                         ap_rst_n,
    input  logic                                         in_valid,
    output logic                                         in_ready,
    input  logic                                         in_first,
    input  logic                                         in_last,
    input  logic [SIMD * V_W - 1:0]                      in_v,
    input  logic [SIMD / SUBROW * KEEP * W_W - 1:0]      in_w,
    input  logic [SIMD / SUBROW * KEEP * IDX_W - 1:0]    in_idx,
    output logic                                         out_valid,
    input  logic                                         out_ready,
    output logic [ACC_W - 1:0]                           out_sum
);
    localparam int GROUPS = SIMD / SUBROW;
    localparam int N      = GROUPS * KEEP;          // multipliers
    localparam int LEVELS = (N > 1) ? $clog2(N) : 0; // adder-tree levels
    localparam int LEAVES = 1 << LEVELS;
    localparam int WX_W   = W_W + ((W_SIGNED != 0) ? 0 : 1);  // weight as a signed operand
    localparam int FULL_W = V_W + WX_W;              // full product width

    logic en;  // global stall: nothing moves while a finished sum waits
    assign en = !out_valid || out_ready;
    assign in_ready = en;

    // ---- select (mux by the stored index) and multiply, one lane per kept weight
    logic [N * PROD_W - 1:0] prod;
    for (genvar l = 0; l < N; l++) begin : g_lane
        localparam int S = l / KEEP;  // sub-row of this lane
        logic [31:0]              idx;
        logic [V_W - 1:0]         sel;
        logic signed [WX_W - 1:0] wx;
        logic signed [FULL_W - 1:0] p;
        assign idx = {{(32 - IDX_W){1'b0}}, in_idx[l * IDX_W +: IDX_W]};
        // AND-OR multiplexer over the SUBROW channels of sub-row S
        always_comb begin
            sel = '0;
            for (int c = 0; c < SUBROW; c++) begin
                if (SUBROW == 1 || idx == c) sel = sel | in_v[(S * SUBROW + c) * V_W +: V_W];
            end
        end
        if (W_SIGNED != 0) begin : g_ws
            assign wx = in_w[l * W_W +: W_W];
        end else begin : g_wu
            assign wx = {1'b0, in_w[l * W_W +: W_W]};
        end
        if (MUL_LUT != 0) begin : g_mul_lut
            // two's complement partial products: bit k of the weight adds sel << k, the sign bit subtracts
            logic signed [FULL_W - 1:0] sel_x;
            assign sel_x = FULL_W'($signed(sel));
            always_comb begin
                p = '0;
                for (int k = 0; k < WX_W - 1; k++) if (wx[k]) p = p + (sel_x <<< k);
                if (wx[WX_W - 1]) p = p - (sel_x <<< (WX_W - 1));
            end
        end else begin : g_mul_op
            assign p = $signed(sel) * wx;
        end
        assign prod[l * PROD_W +: PROD_W] = p[PROD_W - 1:0];
        if (FULL_W > PROD_W) begin : g_drop
            logic unused_high;  // the exact product range needs only PROD_W bits
            assign unused_high = &{1'b0, p[FULL_W - 1:PROD_W]};
        end
    end

    // ---- optional multiplier register
    logic                    mul_valid, mul_first, mul_last;
    logic [N * PROD_W - 1:0] prod_q;
    if (MUL_REG != 0) begin : g_mul_reg
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) mul_valid <= 1'b0;
            else if (en) mul_valid <= in_valid;
            if (en) begin
                mul_first <= in_first;
                mul_last  <= in_last;
                prod_q    <= prod;
            end
        end
    end else begin : g_mul_wire
        assign mul_valid = in_valid;
        assign mul_first = in_first;
        assign mul_last  = in_last;
        assign prod_q    = prod;
    end

    // ---- adder tree: level d has LEAVES >> d nodes of TW_d = min(SUM_W, PROD_W + d)
    //      bits; node i of level d at tree[(d*LEAVES + i)*SUM_W +: TW_d]
    // (split_var: the levels of one vector are not a combinational loop)
    logic [(LEVELS + 1) * LEAVES * SUM_W - 1:0] tree /*verilator split_var*/;
    // one spare top bit each: split_var needs at least 2 bits (a single lane has no tree)
    logic [LEVELS + 1:0] tvalid /*verilator split_var*/;
    logic [LEVELS + 1:0] tfirst /*verilator split_var*/;
    logic [LEVELS + 1:0] tlast /*verilator split_var*/;
    logic unused_spare;
    assign {tvalid[LEVELS + 1], tfirst[LEVELS + 1], tlast[LEVELS + 1]} = '0;
    assign unused_spare = &{1'b0, tvalid[LEVELS + 1], tfirst[LEVELS + 1], tlast[LEVELS + 1]};

    // level 0: the products, zero-padded to a power of two
    localparam int TW0 = (PROD_W < SUM_W) ? PROD_W : SUM_W;
    for (genvar i = 0; i < LEAVES; i++) begin : g_leaf
        if (i < N) begin : g_p
            assign tree[i * SUM_W +: TW0] = prod_q[i * PROD_W +: TW0];
        end else begin : g_z
            assign tree[i * SUM_W +: TW0] = '0;
        end
        if (TW0 < SUM_W) begin : g_pad
            assign tree[i * SUM_W + TW0 +: SUM_W - TW0] = '0;
        end
    end
    for (genvar i = LEAVES; i < (LEVELS + 1) * LEAVES; i++) begin : g_unused
        if (i % LEAVES >= (LEAVES >> (i / LEAVES))) begin : g_z
            assign tree[i * SUM_W +: SUM_W] = '0;
        end
    end
    assign tvalid[0] = mul_valid;
    assign tfirst[0] = mul_first;
    assign tlast[0]  = mul_last;

    for (genvar d = 1; d <= LEVELS; d++) begin : g_level
        localparam int WI = (PROD_W + d - 1 < SUM_W) ? PROD_W + d - 1 : SUM_W;
        localparam int WO = (PROD_W + d < SUM_W) ? PROD_W + d : SUM_W;
        localparam int NODES = LEAVES >> d;
        localparam bit REG = (TREE_REG_EVERY > 0) && ((d % TREE_REG_EVERY == 0) || d == LEVELS);
        localparam int IN0 = (d - 1) * LEAVES * SUM_W;
        localparam int OUT0 = d * LEAVES * SUM_W;
        logic [NODES * WO - 1:0] sum;
        for (genvar i = 0; i < NODES; i++) begin : g_add
            logic [WO - 1:0] a;
            logic [WO - 1:0] b;
            if (WO > WI) begin : g_x
                assign a = {{(WO - WI){tree[IN0 + (2 * i) * SUM_W + WI - 1]}}, tree[IN0 + (2 * i) * SUM_W +: WI]};
                assign b = {{(WO - WI){tree[IN0 + (2 * i + 1) * SUM_W + WI - 1]}}, tree[IN0 + (2 * i + 1) * SUM_W +: WI]};
            end else begin : g_t
                assign a = tree[IN0 + (2 * i) * SUM_W +: WO];
                assign b = tree[IN0 + (2 * i + 1) * SUM_W +: WO];
            end
            assign sum[i * WO +: WO] = a + b;
        end
        logic [NODES * WO - 1:0] node;
        logic valid, first, last;
        if (REG) begin : g_reg
            always_ff @(posedge ap_clk) begin
                if (!ap_rst_n) valid <= 1'b0;
                else if (en) valid <= tvalid[d - 1];
                if (en) begin
                    first <= tfirst[d - 1];
                    last  <= tlast[d - 1];
                    node  <= sum;
                end
            end
        end else begin : g_wire
            assign valid = tvalid[d - 1];
            assign first = tfirst[d - 1];
            assign last  = tlast[d - 1];
            assign node  = sum;
        end
        assign tvalid[d] = valid;
        assign tfirst[d] = first;
        assign tlast[d]  = last;
        for (genvar i = 0; i < NODES; i++) begin : g_out
            assign tree[OUT0 + i * SUM_W +: WO] = node[i * WO +: WO];
            if (WO < SUM_W) begin : g_pad
                assign tree[OUT0 + i * SUM_W + WO +: SUM_W - WO] = '0;
            end
        end
    end

    // ---- accumulator over the input-channel folds
    localparam int TW_LAST = (PROD_W + LEVELS < SUM_W) ? PROD_W + LEVELS : SUM_W;
    localparam int ROOT = LEVELS * LEAVES * SUM_W;
    logic [ACC_W - 1:0] sum_ext;
    if (ACC_W > TW_LAST) begin : g_acc_x
        assign sum_ext = {{(ACC_W - TW_LAST){tree[ROOT + TW_LAST - 1]}}, tree[ROOT +: TW_LAST]};
    end else begin : g_acc_t
        assign sum_ext = tree[ROOT +: ACC_W];
    end

    logic [ACC_W - 1:0] acc;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) out_valid <= 1'b0;
        else if (en) out_valid <= tvalid[LEVELS] && tlast[LEVELS];
        if (en && tvalid[LEVELS]) acc <= (tfirst[LEVELS] ? '0 : acc) + sum_ext;
    end
    assign out_sum = acc;
endmodule
