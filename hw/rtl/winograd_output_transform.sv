// winograd_output_transform -- Y = A^T M A for one tile of one output channel,
// Winograd F(m x m, 3 x 3), m in {2, 4}: a t x t accumulator tile M to an
// m x m output tile.
//
// An arithmetic unit of the WinogradSRBS layer (winoforge.hw.winograd_op), not
// the streaming layer: one whole tile per beat, no M buffer, no folding onto
// u_out serial 1-D units.  It is t + m copies of winograd_transform_1d (A^T):
// t on the columns of M (Z = A^T M, m x t, MID_W bits) and m on the rows of Z
// (Y = Z A, OUT_W bits).  Shifts and adds only (A^T of F(4,3) holds 8 = a shift).
//
// Exactness: arithmetic is modulo 2^OUT_W (MID_W <= OUT_W is either the exact
// width of Z over every IN_W-bit M, or OUT_W), so Y is exact whenever the true
// Y fits a signed OUT_W-bit word.  winoforge.hw.rtl.unit_parameters
// ("output_transform") passes OUT_W = bit_growth(...).output_bits: the exact
// output range of the layer, so every M the layer's accumulators can produce
// gives the exact Y (an arbitrary IN_W-bit M may exceed it and then wraps).
//
// Handshake and LATENCY: as winograd_input_transform (0: combinational,
// 1: output registered, 2: Z and output registered; global stall).
//
// Packing: element (a, b) of M at in_data[(a*t + b)*IN_W +: IN_W] (two's
// complement), element (i, j) of Y at out_data[(i*m + j)*OUT_W +: OUT_W].

module winograd_output_transform #(
    parameter int M       = 2,   // 2 or 4
    parameter int IN_W    = 24,  // accumulator width (two's complement)
    parameter int MID_W   = 26,  // width of Z = A^T M
    parameter int OUT_W   = 26,  // width of Y (two's complement)
    parameter int LATENCY = 1    // 0, 1 or 2 register stages
) (
    input  logic                                   ap_clk,
    input  logic                                   ap_rst_n,
    input  logic                                   in_valid,
    output logic                                   in_ready,
    input  logic [(M + 2) * (M + 2) * IN_W - 1:0]  in_data,
    output logic                                   out_valid,
    input  logic                                   out_ready,
    output logic [M * M * OUT_W - 1:0]             out_data
);
    localparam int T = M + 2;

    // ---- Z = A^T M: one 1-D transform per column b (Z is m x t)
    logic [M * T * MID_W - 1:0] z;  // element (i, b) at (i*t + b)*MID_W
    for (genvar b = 0; b < T; b++) begin : g_col
        logic [T * IN_W - 1:0]  col;
        logic [M * MID_W - 1:0] zcol;
        for (genvar a = 0; a < T; a++) begin : g_gather
            assign col[a * IN_W +: IN_W] = in_data[(a * T + b) * IN_W +: IN_W];
        end
        for (genvar i = 0; i < M; i++) begin : g_scatter
            assign z[(i * T + b) * MID_W +: MID_W] = zcol[i * MID_W +: MID_W];
        end
        winograd_transform_1d #(
            .M(M), .KIND(1), .IN_W(IN_W), .IN_SIGNED(1), .OUT_W(MID_W)
        ) u_at (
            .x(col), .y(zcol)
        );
    end

    // ---- optional register between the passes
    logic                       en;
    logic                       mid_valid;
    logic [M * T * MID_W - 1:0] z_q;
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

    // ---- Y = Z A: one 1-D transform per row i of Z ((Z A)^T = A^T Z^T)
    logic [M * M * OUT_W - 1:0] y;
    for (genvar i = 0; i < M; i++) begin : g_row
        winograd_transform_1d #(
            .M(M), .KIND(1), .IN_W(MID_W), .IN_SIGNED(1), .OUT_W(OUT_W)
        ) u_a (
            .x(z_q[i * T * MID_W +: T * MID_W]), .y(y[i * M * OUT_W +: M * OUT_W])
        );
    end

    // ---- output register and handshake
    if (LATENCY >= 1) begin : g_out_reg
        assign en = !out_valid || out_ready;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) out_valid <= 1'b0;
            else if (en) out_valid <= mid_valid;
            if (en) out_data <= y;
        end
    end else begin : g_out_wire
        logic unused_comb;  // combinational: no clock, reset or mid stage
        assign unused_comb = &{1'b0, ap_clk, ap_rst_n, mid_valid};
        assign en = out_ready;
        assign out_valid = in_valid;
        assign out_data = y;
    end
    assign in_ready = en;
endmodule
