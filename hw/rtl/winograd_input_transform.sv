// winograd_input_transform -- V = B^T d B for one t x t tile of one channel,
// Winograd F(m x m, 3 x 3), m in {2, 4}, t = m + 2.
//
// An arithmetic unit of the WinogradSRBS layer (winoforge.hw.winograd_op), not
// the streaming layer: one whole tile per beat, no line buffer, no folding
// onto serial 1-D units.  It is 2t copies of winograd_transform_1d (B^T):
// t on the columns of d (Z = B^T d, MID_W bits), t on the rows of Z
// (V = Z B, OUT_W bits).  Shifts and adds only, no multipliers.
//
// Exactness: pass the widths of winoforge.hw.rtl.unit_parameters
// ("input_transform"): MID_W and OUT_W hold the exact ranges of Z and V for
// every IN_W-bit input tile (OUT_W = bit_growth(...).input_transform_bits), so
// every output is exact.  Arithmetic is modulo 2^width (see
// winograd_transform_1d): a narrower OUT_W wraps the extreme tiles.
//
// Handshake: valid/ready with a global stall.  LATENCY = 0: combinational
// (in_ready = out_ready); 1: output registered; 2: Z and output registered.
// A beat is accepted when in_valid && in_ready and delivered LATENCY cycles
// later, when nothing stalls, at out_valid && out_ready.  Full throughput while
// out_ready is high.
//
// Packing: element (r, c) of d at in_data[(r*t + c)*IN_W +: IN_W], element
// (a, b) of V at out_data[(a*t + b)*OUT_W +: OUT_W] (element 0 at the LSBs).

module winograd_input_transform #(
    parameter int M         = 2,   // 2 or 4
    parameter int IN_W      = 8,   // input code width
    parameter int IN_SIGNED = 1,   // 1: signed input codes, 0: unsigned
    parameter int MID_W     = 10,  // width of Z = B^T d
    parameter int OUT_W     = 10,  // width of V = B^T d B (two's complement)
    parameter int LATENCY   = 1    // 0, 1 or 2 register stages
) (
    input  logic                                   ap_clk,
    input  logic                                   ap_rst_n,
    input  logic                                   in_valid,
    output logic                                   in_ready,
    input  logic [(M + 2) * (M + 2) * IN_W - 1:0]  in_data,
    output logic                                   out_valid,
    input  logic                                   out_ready,
    output logic [(M + 2) * (M + 2) * OUT_W - 1:0] out_data
);
    localparam int T = M + 2;

    // ---- Z = B^T d: one 1-D transform per column c
    logic [T * T * MID_W - 1:0] z;  // element (i, c) at (i*t + c)*MID_W
    for (genvar c = 0; c < T; c++) begin : g_col
        logic [T * IN_W - 1:0]  col;
        logic [T * MID_W - 1:0] zcol;
        for (genvar r = 0; r < T; r++) begin : g_gather
            assign col[r * IN_W +: IN_W] = in_data[(r * T + c) * IN_W +: IN_W];
            assign z[(r * T + c) * MID_W +: MID_W] = zcol[r * MID_W +: MID_W];
        end
        winograd_transform_1d #(
            .M(M), .KIND(0), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .OUT_W(MID_W)
        ) u_bt (
            .x(col), .y(zcol)
        );
    end

    // ---- optional register between the passes
    logic                       en;        // global stall: no stage moves while the output waits
    logic                       mid_valid;
    logic [T * T * MID_W - 1:0] z_q;
    if (LATENCY >= 2) begin : g_mid_reg
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) mid_valid <= 1'b0;
            else if (en) mid_valid <= in_valid;
            if (en) z_q <= z;
        end
    end else begin : g_mid_wire
        assign mid_valid = in_valid;
        assign z_q = z;
    end

    // ---- V = Z B: one 1-D transform per row i of Z ((Z B)^T = B^T Z^T)
    logic [T * T * OUT_W - 1:0] v;
    for (genvar i = 0; i < T; i++) begin : g_row
        winograd_transform_1d #(
            .M(M), .KIND(0), .IN_W(MID_W), .IN_SIGNED(1), .OUT_W(OUT_W)
        ) u_b (
            .x(z_q[i * T * MID_W +: T * MID_W]), .y(v[i * T * OUT_W +: T * OUT_W])
        );
    end

    // ---- output register and handshake
    if (LATENCY >= 1) begin : g_out_reg
        assign en = !out_valid || out_ready;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) out_valid <= 1'b0;
            else if (en) out_valid <= mid_valid;
            if (en) out_data <= v;
        end
    end else begin : g_out_wire
        logic unused_comb;  // combinational: no clock, reset or mid stage
        assign unused_comb = &{1'b0, ap_clk, ap_rst_n, mid_valid};
        assign en = out_ready;
        assign out_valid = in_valid;
        assign out_data = v;
    end
    assign in_ready = en;
endmodule
