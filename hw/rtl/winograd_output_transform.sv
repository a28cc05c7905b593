// winograd_output_transform -- Y = A^T M A for one tile of one output channel,
// Winograd F(m x m, 3 x 3), m in {2, 4}: a t x t accumulator tile M to an
// m x m output tile.
//
// An arithmetic unit of the WinogradSRBS layer (winoforge.hw.winograd_op), not
// the streaming layer: one whole tile per beat, no M buffer, no folding onto
// u_out serial 1-D units.  winograd_transform_2d with A^T: t + m copies of
// winograd_transform_1d, t on the columns of M (Z = A^T M, m x t, MID_W bits)
// and m on the rows of Z (Y = Z A, OUT_W bits).  Shifts and adds only (A^T of F(4,3) holds 8 = a shift).
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
    winograd_transform_2d #(
        .M(M), .KIND(1), .IN_W(IN_W), .IN_SIGNED(1), .MID_W(MID_W), .OUT_W(OUT_W), .LATENCY(LATENCY)
    ) u_2d (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data)
    );
endmodule
